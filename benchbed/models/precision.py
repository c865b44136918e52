"""Precisions: what each device can run, casting, and int8 through torchao.

``int8`` quantises every ``nn.Linear`` with torchao's ``Int8DynamicActivationInt8WeightConfig``
(int8 weights, activations quantised per token at run time), the maintained path on CPU and CUDA;
``options: int8=weight-only`` picks ``Int8WeightOnlyConfig`` instead. Where torchao is missing,
CPU falls back to torch's deprecated ``quantize_dynamic`` and the record says so. The method used
is recorded with every case (``quant_method``).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator

from ..spec import TORCH_DTYPES, device_index

__all__ = ["INT8_METHODS", "TORCH_DTYPES", "base_dtype", "precision_unavailable", "quantize_int8", "torchao_version"]

#: Values of the ``int8`` case option, mapped to torchao config classes.
INT8_METHODS = {"dynamic": "Int8DynamicActivationInt8WeightConfig", "weight-only": "Int8WeightOnlyConfig"}


def base_dtype(dtype: str, device: str) -> str:
    """The floating dtype a module is cast to before anything else: int8 keeps fp32 on the CPU and
    bf16 on GPUs (torchao's int8 kernels there are written for bf16 activations)."""
    if dtype == "int8":
        return "bf16" if device.startswith("cuda") else "fp32"
    return dtype


@contextmanager
def _quiet_import() -> Iterator[None]:
    # torchao logs a warning per optional CUDA extension it cannot load on a CPU-only build.
    names = ("torchao", "torch.utils._pytree")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def torchao_version() -> str | None:
    """The installed torchao version, or None where it is missing or does not import."""
    try:
        with _quiet_import():
            import torchao
    except Exception:  # an incompatible torchao fails in many ways; all mean "not usable"
        return None
    return str(torchao.__version__)


def precision_unavailable(dtype: str, device: str, int8_method: str = "dynamic") -> str | None:
    """Why `device` cannot run `dtype` here, or None. Cheap: no model is built."""
    import torch

    if dtype == "bf16" and device.startswith("cuda") and torch.cuda.is_available():
        index = device_index(device)
        if index < torch.cuda.device_count() and not torch.cuda.is_bf16_supported():
            return f"bf16 is not supported by {torch.cuda.get_device_name(index)}"
    if dtype != "int8":
        return None
    if int8_method not in INT8_METHODS:
        return f"unknown int8 method {int8_method!r} (valid: {', '.join(INT8_METHODS)})"
    if device == "mps":
        return "int8 (torchao) does not support MPS"
    if torchao_version() is None:
        if device == "cpu" and int8_method == "dynamic":
            return None  # torch's own quantize_dynamic still runs on the CPU
        return "int8 needs torchao (pip install torchao)"
    return None


def quantize_int8(module: Any, device: str, int8_method: str = "dynamic") -> str:
    """Quantise `module`'s linear layers in place; returns the method, for the record."""
    version = torchao_version()
    if version is None:
        import torch

        # Deprecated in torch but still working on the CPU; only reached without torchao.
        quantized = torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        assert quantized is module
        return "torch.ao.quantization.quantize_dynamic (deprecated; torchao not installed)"
    with _quiet_import():
        import torchao.quantization as tq

    config_name = INT8_METHODS[int8_method]
    tq.quantize_(module, getattr(tq, config_name)())
    return f"torchao {version} {config_name}"
