"""The environment fingerprint, as a registry of keys each filled by a small collector.

`COMPARABLE_KEYS` names the keys that must match before two runs' numbers may be compared
(hardware and library versions); the rest describe the run.

A VM's CPU model string is not an identity: two VMs that both call their CPU "Intel(R) Xeon(R)
Processor" gave onnxruntime ÷ torch 0.69 and 1.35 on the same cell (one had AVX-512 and AMX). So
the host is named by what decides speed: vendor, family, model and stepping (``env_cpu_id``), the
instruction-set extensions the kernels dispatch on (``env_cpu_isa``), torch's own CPU capability
(``env_torch_cpu_capability``), physical and logical cores and memory.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["EnvKey", "ENV_KEYS", "COMPARABLE_KEYS", "collect_env"]


@dataclass(frozen=True)
class EnvKey:
    name: str
    collect: Callable[[], Any]
    help: str
    comparable: bool = False


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if not line.strip():
                    if out:
                        break
                    continue
                key, _, value = line.partition(":")
                out.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return out


def _cpu_id() -> str | None:
    """``vendor family/model/stepping`` (x86), or the implementer/part of an ARM core."""
    info = _cpuinfo()
    if "vendor_id" in info:
        return (f"{info['vendor_id']} {info.get('cpu family', '?')}/{info.get('model', '?')}/"
                f"{info.get('stepping', '?')}")
    if "CPU implementer" in info:
        return f"arm {info['CPU implementer']}/{info.get('CPU part', '?')}/{info.get('CPU variant', '?')}"
    return platform.machine() or None


#: The instruction-set extensions that decide which kernels torch, oneDNN and ONNX Runtime run.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512dq", "avx512vl",
             "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16",
             "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm", "sme")


def _cpu_isa() -> str | None:
    """The `ISA_FLAGS` this CPU has, space-separated in a fixed order."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    if not flags and platform.system() == "Darwin":
        return "neon" if platform.machine() == "arm64" else None
    found = [f for f in ISA_FLAGS if f in flags]
    if "asimd" in flags:
        found.insert(0, "neon")
    return " ".join(found) or None


def _torch_cpu_capability() -> str | None:
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def _physical_cores() -> int | None:
    import psutil

    return psutil.cpu_count(logical=False)


def _memory_gib() -> int | None:
    """Total memory in whole GiB (rounded, so a kernel's few reserved MB do not make a new host)."""
    import psutil

    return int(round(psutil.virtual_memory().total / 2**30))


def _onnxruntime() -> str | None:
    """onnxruntime's version and, where it is loaded, its execution providers, e.g.
    ``1.22.0 (CPUExecutionProvider)``."""
    ver = _version("onnxruntime") or _version("onnxruntime-gpu")
    if ver is None:
        return None
    import sys

    # Only where a runner already loaded it: importing onnxruntime (1.32) starts its telemetry, which
    # writes a device id and a database under ~/.cache/Microsoft; a run without the onnxruntime
    # runner must not do that for a fingerprint.
    onnxruntime = sys.modules.get("onnxruntime")
    if onnxruntime is None:
        return ver
    try:
        return f"{ver} ({', '.join(onnxruntime.get_available_providers())})"
    except Exception:
        return ver


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _cuda_ready() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def _gpu() -> str | None:
    if not _cuda_ready():
        return None
    import torch

    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return ", ".join(names)


def _gpu_driver() -> str | None:
    if not _cuda_ready():
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            drv = pynvml.nvmlSystemGetDriverVersion()
            return drv.decode() if isinstance(drv, bytes) else drv
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None


def _cuda() -> str | None:
    if not _cuda_ready():
        return None
    import torch

    return torch.version.cuda


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _git_dirty() -> bool | None:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def _ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


ENV_KEYS: tuple[EnvKey, ...] = (
    EnvKey("env_host", socket.gethostname, "host name"),
    EnvKey("env_os", lambda: f"{platform.system()} {platform.release()}", "operating system and kernel"),
    EnvKey("env_cpu", _cpu, "CPU model", comparable=True),
    EnvKey("env_cores", os.cpu_count, "logical CPU count", comparable=True),
    EnvKey("env_gpu", _gpu, "GPU model(s), when CUDA is available", comparable=True),
    EnvKey("env_gpu_driver", _gpu_driver, "NVIDIA driver version (NVML)"),
    EnvKey("env_cuda", _cuda, "CUDA version torch was built with", comparable=True),
    EnvKey("env_python", platform.python_version, "Python version", comparable=True),
    EnvKey("env_torch", lambda: _version("torch"), "torch version", comparable=True),
    EnvKey("env_transformers", lambda: _version("transformers"), "transformers version", comparable=True),
    EnvKey("env_tokenizers", lambda: _version("tokenizers"), "tokenizers version", comparable=True),
    EnvKey("env_benchbed", lambda: _version("benchbed"), "benchbed version"),
    EnvKey("env_git_sha", lambda: _git("rev-parse", "HEAD"), "git commit of the working directory"),
    EnvKey("env_git_dirty", _git_dirty, "uncommitted changes to tracked files"),
    EnvKey("env_ci", _ci, "running under CI (CI environment variable set)"),
    EnvKey("env_tokenizers_parallelism", lambda: os.environ.get("TOKENIZERS_PARALLELISM"),
           "TOKENIZERS_PARALLELISM as fixed for both paths"),
    EnvKey("env_torchao", lambda: _version("torchao"), "torchao version (int8 quantisation)"),
    EnvKey("env_cpu_id", _cpu_id, "CPU vendor family/model/stepping (a VM's model string is no identity)",
           comparable=True),
    EnvKey("env_cpu_isa", _cpu_isa, "instruction-set extensions kernels dispatch on (avx2, avx512*, amx*, neon, sve…)",
           comparable=True),
    EnvKey("env_torch_cpu_capability", _torch_cpu_capability, "torch's CPU kernel capability (e.g. AVX512)",
           comparable=True),
    EnvKey("env_physical_cores", _physical_cores, "physical CPU cores", comparable=True),
    EnvKey("env_memory_gib", _memory_gib, "total memory, GiB", comparable=True),
    EnvKey("env_onnxruntime", _onnxruntime, "onnxruntime version and its execution providers", comparable=True),
    EnvKey("env_accelerate", lambda: _version("accelerate"), "accelerate version (the trainer runner)",
           comparable=True),
    EnvKey("env_datasets", lambda: _version("datasets"), "datasets version (hf: inputs)"),
    EnvKey("env_ray", lambda: _version("ray"), "ray version (--cluster ray)"),
)

COMPARABLE_KEYS: tuple[str, ...] = tuple(k.name for k in ENV_KEYS if k.comparable)


def collect_env() -> dict[str, Any]:
    """Run every collector once; a collector that fails yields None rather than stopping a run."""
    out: dict[str, Any] = {}
    for key in ENV_KEYS:
        try:
            out[key.name] = key.collect()
        except Exception:
            out[key.name] = None
    return out
