"""Environments as an axis: a named set of requirements (``--env old="transformers==4.57.6"``),
built once into a cached virtual environment that runners can be addressed in (``pipeline@old``).

An environment is the current one plus SPEC: a virtual environment whose own site-packages hold
what SPEC installs, layered over the current environment's site-packages (a ``.pth`` line that
adds them after its own, so benchbed itself — editable when it is a checkout — torch and every
pin stay what they are here, and only what SPEC names moves). Building it installs SPEC with
``uv pip`` where ``uv`` is installed (the ``[envs]`` extra), else with pip; the installer's own
message is the error when SPEC does not resolve. It is cached under ``BENCHBED_ENV_DIR`` (default
``~/.cache/benchbed/envs``) by a hash of what went in: the interpreter, the base environment, SPEC
(with a requirements file's contents), and the wheel folders given (names and sizes of their files).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .display import clip
from .spec import SpecError

__all__ = ["EnvSpec", "BuiltEnv", "parse_env", "build_env", "env_root", 
           "package_digest", "split_runner", "ENV_SEP",
           "finished_marker", "read_marker", "BEGUN_MARKER", "DONE_MARKER", "KEY_PATTERN"]

#: ``RUNNER@ENV``: the runner `RUNNER` in environment `ENV`.
ENV_SEP = "@"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: marker file of a finished build (a folder without it is a build that died, rebuilt next time)
DONE_MARKER = _DONE = ".benchbed-env.json"
#: marker written *before* a build starts: the proof that benchbed made the folder (prune removes
#: nothing without it, or without a finished build's marker), and who is building it (pid + start time)
BEGUN_MARKER = _BEGUN = ".benchbed-env-build.json"
#: the cache keys benchbed names its folders and locks by (``env_key``)
KEY_PATTERN = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class EnvSpec:
    """What an environment is: its name and the requirements installed on top of the current one."""

    name: str
    requirements: tuple[str, ...] = ()
    requirement_file: str | None = None
    #: installer options of this environment (``--no-build-isolation`` for a commit built from git)
    install_args: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """SPEC as the user wrote it (recorded as ``env_spec``)."""
        return " ".join(self.requirements) if self.requirement_file is None else f"-r {self.requirement_file}"


def parse_env(text: str, base_dir: str | None = None) -> EnvSpec:
    """``NAME=SPEC``: SPEC is requirement specifiers (space- or comma-separated) or ``-r FILE``."""
    name, sep, spec = str(text).partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not _NAME.match(name) or not spec:
        raise SpecError(f"--env must be NAME=SPEC (e.g. old=\"transformers==4.57.6\", or new=\"-r FILE\"), "
                        f"got {clip(repr(str(text)), 200)}")
    if spec.startswith("-r"):
        path = spec[2:].strip()
        if base_dir and not os.path.isabs(path):
            path = os.path.join(base_dir, path)
        if os.path.isdir(path):
            raise SpecError(f"--env {name}: {clip(path, 200)!r} is a folder; -r takes a requirements file")
        if not os.path.isfile(path):
            raise SpecError(f"--env {name}: requirements file {clip(path, 200)!r} does not exist")
        return EnvSpec(name, (), os.path.abspath(path))
    reqs = _split_requirements(spec)
    from packaging.requirements import InvalidRequirement, Requirement

    for r in reqs:
        try:
            Requirement(r)
        except InvalidRequirement as exc:
            raise SpecError(f"--env {name}: {clip(repr(r), 200)} is not a requirement specifier "
                            f"({clip(exc, 200)})") from None
    return EnvSpec(name, reqs)


def _split_requirements(spec: str) -> tuple[str, ...]:
    """Requirements separated by spaces or commas, where a comma followed by a version operator
    continues the same requirement (``transformers>=4.0,<5`` is one)."""
    out: list[str] = []
    for word in spec.split():
        first = True
        for piece in word.split(","):
            if piece and piece[0] in "<>=!~" and not first and out:
                out[-1] += "," + piece
            elif piece:
                out.append(piece)
            first = False
    return tuple(out)


def split_runner(name: str) -> tuple[str, str | None]:
    """``pipeline@old`` → (``pipeline``, ``old``); a plain runner → (name, None)."""
    runner, sep, env = name.partition(ENV_SEP)
    return (runner, env) if sep else (name, None)


@dataclass(frozen=True)
class BuiltEnv:
    """A built environment: where its interpreter is and what it holds."""

    spec: EnvSpec
    path: str
    python: str
    digest: str  # of its full package list, as seen from inside
    built_s: float  # seconds the build took (0 when it came from the cache)
    cached: bool
    tool: str

    def columns(self) -> dict[str, Any]:
        return {"env_name": self.spec.name, "env_spec": self.spec.text, "env_packages_digest": self.digest}


def env_root() -> str:
    """Where built environments are cached (``BENCHBED_ENV_DIR``, else the user's cache folder);
    `SpecError` when that path exists and is not a folder."""
    explicit = os.environ.get("BENCHBED_ENV_DIR")
    if explicit:
        root = os.path.abspath(explicit)
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(cache, "benchbed", "envs")
    if os.path.exists(root) and not os.path.isdir(root):
        raise SpecError(f"BENCHBED_ENV_DIR: {root!r} is not a folder (environments are cached in a folder)")
    return root


def read_marker(path: str) -> dict[str, Any] | None:
    """A marker's contents, or None when it is missing, unreadable, not JSON or not an object:
    marker files are data on disk, never trusted to be well formed."""
    try:
        with open(path, "rb") as fh:
            meta = json.loads(fh.read(1 << 16).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def finished_marker(path: str) -> dict[str, Any] | None:
    """The finished-build marker of `path` when it is one benchbed wrote (digest and tool strings)."""
    meta = read_marker(os.path.join(path, _DONE))
    if meta and isinstance(meta.get("digest"), str) and isinstance(meta.get("tool"), str):
        return meta
    return None


def _site_dirs() -> list[str]:
    """The current environment's site-packages folders, in import order."""
    import site

    dirs = [p for p in sys.path if p.rstrip(os.sep).endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
    for p in site.getsitepackages():
        if p not in dirs and os.path.isdir(p):
            dirs.append(p)
    return dirs


def _file_digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _links_listing(find_links: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for d in find_links:
        if os.path.isdir(d):
            out.append([d, sorted((f, os.path.getsize(os.path.join(d, f))) for f in os.listdir(d))])
        else:
            out.append([d, None])
    return out


def env_key(spec: EnvSpec, find_links: tuple[str, ...] = (), no_index: bool = False) -> str:
    """The cache key: a hash of the interpreter, the base environment and what SPEC installs."""
    what = {"python": sys.version, "prefix": sys.prefix, "sites": _site_dirs(), "requirements": list(spec.requirements),
            "install_args": list(spec.install_args),
            "file": None if spec.requirement_file is None else _file_digest(spec.requirement_file),
            "links": _links_listing(find_links), "no_index": no_index}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def installer(python: str) -> tuple[str, list[str]]:
    """(name, command up to the requirements) installing into `python`'s environment: ``uv pip
    install`` where uv is installed (``BENCHBED_INSTALLER=pip`` forces pip), else pip."""
    uv = shutil.which("uv") or shutil.which("uv", path=os.path.dirname(sys.executable))
    if uv and os.environ.get("BENCHBED_INSTALLER", "uv") != "pip":
        return "uv", [uv, "pip", "install", "--python", python, "--quiet"]
    return "pip", [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check", "install", "--quiet"]


def _env_python(path: str) -> str:
    return os.path.join(path, "Scripts", "python.exe") if os.name == "nt" else os.path.join(path, "bin", "python")


def _env_site(python: str) -> str:
    out = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    import fcntl

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def package_digest(python: str) -> str:
    """A digest of every distribution (name and version) importable by `python`, first one wins."""
    code = ("import importlib.metadata as m, json\nseen = {}\n"
            "for d in m.distributions():\n    n = (d.metadata['Name'] or '').lower()\n"
            "    seen.setdefault(n, d.version)\nprint(json.dumps(sorted(seen.items())))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return hashlib.sha256(out.stdout.encode()).hexdigest()[:16]


def build_env(spec: EnvSpec, find_links: tuple[str, ...] = (), no_index: bool = False,
              progress: Callable[[str], None] | None = None) -> BuiltEnv:
    """The environment of `spec`, from the cache or built now; `SpecError` with the installer's
    message when SPEC does not resolve (nothing is left behind)."""
    key = env_key(spec, find_links, no_index)
    root = env_root()
    path = os.path.join(root, key)
    with _locked(os.path.join(root, key + ".lock")):
        done = os.path.join(path, _DONE)
        meta = finished_marker(path)
        if meta is not None and os.path.isfile(_env_python(path)):
            return BuiltEnv(spec, path, _env_python(path), meta["digest"], 0.0, True, meta["tool"])
        if os.path.lexists(path):
            if not os.path.isdir(path) or read_marker(os.path.join(path, _BEGUN)) is None:
                raise SpecError(f"--env {spec.name}: {path!r} exists and benchbed did not make it; remove it, or "
                                f"set BENCHBED_ENV_DIR to another folder")
            shutil.rmtree(path)  # a build of ours that died half-way (we hold its lock)
        t0 = time.perf_counter()
        tool = installer(_env_python(path))[0]
        if progress:
            progress(f"building environment {spec.name} ({spec.text}) with {tool} in {path}")
        try:
            import psutil

            os.makedirs(path)
            with open(os.path.join(path, _BEGUN), "w") as fh:
                json.dump({"key": key, "name": spec.name, "spec": spec.text, "pid": os.getpid(),
                           "pid_started": psutil.Process().create_time(), "created": time.time()}, fh)
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True, capture_output=True,
                           text=True)
            python = _env_python(path)
            site_dir = _env_site(python)
            os.makedirs(site_dir, exist_ok=True)
            # the base environment after this one's own packages: what SPEC installs wins
            lines = [f"import site; site.addsitedir({d!r})" for d in _site_dirs()]
            with open(os.path.join(site_dir, "zz-benchbed-base.pth"), "w") as fh:
                fh.write("\n".join(lines) + "\n")
            args = list(spec.requirements) if spec.requirement_file is None else ["-r", spec.requirement_file]
            extra = [a for d in find_links for a in ("--find-links", d)] + (["--no-index"] if no_index else [])
            p = subprocess.run([*installer(python)[1], *extra, *spec.install_args, *args], capture_output=True,
                               text=True)
            if p.returncode != 0:
                message = " ".join((p.stderr.strip() or p.stdout.strip() or f"exit {p.returncode}").split())
                raise SpecError(f"--env {spec.name}: {spec.text!r} did not install: {message[:600]}")
            digest = package_digest(python)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        seconds = time.perf_counter() - t0
        with open(done + ".tmp", "w") as fh:
            json.dump({"name": spec.name, "spec": spec.text, "digest": digest, "tool": tool, "built_s": seconds,
                       "created": time.time()}, fh)
        os.replace(done + ".tmp", done)
        if progress:
            progress(f"environment {spec.name} ready in {seconds:.1f}s")
        return BuiltEnv(spec, path, python, digest, seconds, False, tool)
