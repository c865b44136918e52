"""Where weights come from: ``synthetic:<preset>``, ``hf:<id-or-path>``, ``packaged:<name>``, short aliases.

`load_model` returns a `ModelBundle`; `check_model` validates a name without importing torch.
"""

from __future__ import annotations

from .bundle import HEADS, ModelBundle
from .packaged import PACKAGED, packaged_path
from .synthetic import PRESETS

__all__ = ["ALIASES", "HEADS", "ModelBundle", "check_model", "describe_models", "load_model", "resolve"]

#: Short names users type, mapped to full model names.
ALIASES: dict[str, str] = {
    "minilm": "packaged:all-minilm-l6-v2",
    "bert-tiny": "synthetic:bert-tiny",
    "bert-base": "synthetic:bert-base-uncased",
    "distilbert": "synthetic:distilbert-base-uncased",
}


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
