"""The environment fingerprint, as a registry of keys each filled by a small collector.

`COMPARABLE_KEYS` names the keys that must match before two runs' numbers may be compared
(hardware and library versions); the rest describe the run.
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
