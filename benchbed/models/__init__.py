"""Where weights come from: ``synthetic:<preset>``, ``hf:<id-or-path>``, ``packaged:<name>``, short aliases.

`load_model` returns a `ModelBundle`; `check_model` validates a name without importing torch.
"""

from __future__ import annotations

from ..spec import MODEL_ALIASES
from .bundle import HEADS, ModelBundle
from .packaged import PACKAGED, packaged_path
from .synthetic import PRESETS

__all__ = ["ALIASES", "HEADS", "ModelBundle", "check_model", "check_model_source", "describe_models", "load_model",
           "resolve"]

#: Short names users type, mapped to full model names (one table, in `benchbed.spec`).
ALIASES: dict[str, str] = MODEL_ALIASES


def _valid_names() -> list[str]:
    return ([f"synthetic:{p}" for p in PRESETS] + [f"packaged:{p}" for p in PACKAGED]
            + list(ALIASES) + ["hf:<hub-id-or-local-dir>"])


def resolve(name: str) -> tuple[str, str]:
    """Split a model name into (source kind, argument), following aliases."""
    from ..spec import SpecError

    full = ALIASES.get(name, name)
    kind, sep, arg = full.partition(":")
    if sep and kind == "synthetic" and arg in PRESETS:
        return kind, arg
    if sep and kind == "packaged" and arg in PACKAGED:
        return kind, arg
    if sep and kind == "hf" and arg:
        return kind, arg
    raise SpecError(f"unknown model {name!r} (valid: {', '.join(_valid_names())})")


def check_model(name: str) -> None:
    """Raise `SpecError` for a name no source knows; no I/O, no imports of torch."""
    resolve(name)


#: Files that hold weights ``from_pretrained`` loads (pickled ``.bin`` files are refused at load time).
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")


def check_model_source(name: str) -> None:
    """Raise `SpecError` when ``hf:<path>`` names a local folder that is missing, not a folder, or
    holds no config or weights: one line before the run, not one error record per case. Hub ids
    are left to the load (they need the network or the hub cache)."""
    import os

    from ..spec import SpecError

    kind, arg = resolve(name)
    if kind != "hf":
        return
    path = os.path.expanduser(arg)
    path_like = (os.path.isabs(path) or arg.startswith((".", "~")) or arg.count("/") > 1 or "\\" in arg
                 or os.path.exists(path))
    if not path_like:
        return  # "org/name": a hub id
    if not os.path.exists(path):
        raise SpecError(f"model {name!r}: folder {arg!r} does not exist (hf: takes a local folder with config.json "
                        f"and weights, or a hub id such as org/name)")
    if not os.path.isdir(path):
        raise SpecError(f"model {name!r}: {arg!r} is a file; hf: takes a folder with config.json and weights")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise SpecError(f"model {name!r}: folder {arg!r} has no config.json")
    files = os.listdir(path)
    if not any(f in _WEIGHT_FILES or f.endswith(".safetensors") for f in files):
        raise SpecError(f"model {name!r}: folder {arg!r} holds no weights (valid: {', '.join(_WEIGHT_FILES)})")


def describe_models() -> list[tuple[str, str]]:
    """(name, description) pairs for ``benchbed list``."""
    rows = [(f"synthetic:{k}", f"{p.description}; random weights, shapes of {p.mirrors}") for k, p in PRESETS.items()]
    rows += [(f"packaged:{k}", p.description) for k, p in PACKAGED.items()]
    rows += [(alias, f"alias of {full}") for alias, full in ALIASES.items()]
    rows.append(("hf:<id-or-path>", "anything from_pretrained loads: a local directory offline, a hub id online"))
    return rows


def load_model(name: str, head: str, labels: tuple[str, ...] | None, dtype: str, device: str, seed: int = 0,
               trust_remote_code: bool = False, attn_impl: str | None = None,
               int8_method: str = "dynamic") -> ModelBundle:
    """Build or load model `name` with `head`, cast to `dtype` (quantised for ``int8``) on `device`,
    with attention implementation `attn_impl` (None: the model's default)."""
    kind, arg = resolve(name)
    if kind == "synthetic":
        from .synthetic import load_synthetic

        return load_synthetic(arg, head, labels, dtype, device, seed, attn_impl, int8_method)
    from .hub import load_pretrained

    source = packaged_path(arg) if kind == "packaged" else arg
    return load_pretrained(source, name, head, labels, dtype, device, seed, trust_remote_code, attn_impl, int8_method)
