"""Installable wheels made by hand for the environment and bisection tests: a tiny package at
chosen versions, each with its own module source, in a local folder pip and uv read offline
(``--find-links DIR --no-index``)."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(folder: str, package: str, version: str, source: str, broken: bool = False) -> str:
    """Write ``{package}-{version}-py3-none-any.whl`` holding ``{package}/__init__.py`` = `source`;
    `broken`: a file that is not a zip archive (pip and uv refuse it)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{package}-{version}-py3-none-any.whl")
    if broken:
        with open(path, "wb") as fh:
            fh.write(b"this is not a wheel")
        return path
    info = f"{package}-{version}.dist-info"
    files = {
        f"{package}/__init__.py": source.encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: benchbed-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


#: bbtiny's source: `work` returns its input (times `scale`) after `matmuls` 256² matmuls — a fixed
#: amount of work (not a time), so a busy machine slows it as much as the model call beside it
BBTINY = '''
import torch

VERSION = {version!r}
_A = torch.randn(256, 256)


def work(x):
    for _ in range({matmuls}):
        torch.mm(_A, _A)
    return x * {scale}
'''


def bbtiny_wheels(folder: str, versions: dict[str, tuple[int, float]], broken: tuple[str, ...] = ()) -> str:
    """Wheels of bbtiny, version → (matmuls per call, scale); `broken` versions are unreadable files."""
    for version, (spin_ms, scale) in versions.items():
        make_wheel(folder, "bbtiny", version, BBTINY.format(version=version, matmuls=int(spin_ms), scale=scale),
                   broken=version in broken)
    return folder
