"""Failure classification, in one place: what a case this machine cannot run is (``skipped``), and
what an exception raised while measuring is (``oom`` or ``error``)."""

from __future__ import annotations

import importlib.util

from ..spec import Case, device_index

__all__ = ["Skip", "classify", "unavailable_reason", "attn_unsupported", "head_missing"]

#: Packages an attention implementation needs beyond torch and transformers.
_ATTN_PACKAGES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}


class Skip(Exception):
    """A case this machine or model cannot run, found while setting it up."""


def unavailable_reason(case: Case) -> str | None:
    """Why this machine cannot run the case (device, precision, attention package), or None."""
    import torch

    from ..models.precision import precision_unavailable

    if case.device.startswith("cuda"):
        if not torch.cuda.is_available():
            return "CUDA is not available on this machine"
        index = device_index(case.device)
        if index >= torch.cuda.device_count():
            return f"{case.device} requested but only {torch.cuda.device_count()} CUDA device(s) present"
    if case.device == "mps" and not torch.backends.mps.is_available():
        return "MPS is not available on this machine"
    reason = precision_unavailable(case.dtype, case.device, str(case.option("int8", "dynamic")))
    if reason:
        return reason
    package = _ATTN_PACKAGES.get(case.attn_impl or "")
    if package and importlib.util.find_spec(package) is None:
        return f"attn_impl {case.attn_impl} needs the {package} package, which is not installed"
    if case.attn_impl and case.attn_impl.startswith("flash") and not case.device.startswith("cuda"):
        return f"attn_impl {case.attn_impl} runs only on CUDA"
    return None


def _is_oom(exc: BaseException) -> bool:
    import torch

    text = str(exc).lower()
    return (isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in text
            or "can't allocate memory" in text or "cannot allocate memory" in text
            or "thread creation failed" in text or "bad_alloc" in text)


def classify(exc: BaseException, memory_capped: bool = False) -> tuple[str, str]:
    """(status, message) of an exception raised while measuring: ``oom`` for any out-of-memory
    (under a memory cap, oneDNN reports an allocation it could not make as a primitive it could
    not create), else ``error``."""
    oom = _is_oom(exc) or (memory_capped and "could not create a primitive" in str(exc).lower())
    return ("oom" if oom else "error"), f"{exc.__class__.__name__}: {exc}".strip()[:2000]


def attn_unsupported(exc: BaseException) -> bool:
    """transformers refusing an attention implementation for this architecture."""
    text = str(exc)
    return isinstance(exc, (ValueError, ImportError)) and ("attn_implementation" in text or "attention implementation" in text
                                                           or "does not support" in text and "attention" in text)


def subprocess_status(stderr: str, memory_capped: bool) -> str:
    """Status of an isolated child that died without a record: libgomp that cannot start its
    threads under a memory cap ends the process itself, which is an out-of-memory too."""
    text = (stderr or "").lower()
    if memory_capped and any(s in text for s in ("thread creation failed", "cannot allocate memory", "out of memory")):
        return "oom"
    return "error"


def head_missing(exc: BaseException) -> str | None:
    """The short reason when loading failed because the model's architecture has no class for the
    task's head (transformers' "Unrecognized configuration class X for AutoModelForY"), else None:
    a case this model cannot run, not a failure."""
    import re

    m = re.search(r"Unrecognized configuration class <class '[\w.]*?(\w+)'> for this kind of AutoModel: (\w+)",
                  str(exc))
    return f"{m.group(2)} does not take {m.group(1)}" if isinstance(exc, ValueError) and m else None
