"""Loading a suite file for ``benchbed run --suite``: a pytest suite module that defines ``MATRIX``
(the same file ``pytest suites --benchmark`` runs), or a TOML file with a ``[matrix]`` table.

Whatever the file does while it loads — raise, call ``sys.exit``, loop forever — is one `SpecError`
line (exit 2): a suite's own exit code must never read as the gate's, and a suite that does not
finish loading within `LOAD_TIMEOUT_S` is stopped."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import sys
import threading
import tomllib
from typing import Any, Iterator

from .spec import Matrix, SpecError

__all__ = ["load_suite", "LOAD_TIMEOUT_S", "SUITE_TABLES"]

#: Seconds a suite module may take to import (``BENCHBED_SUITE_TIMEOUT`` overrides).
LOAD_TIMEOUT_S = 60.0
#: The tables a TOML suite may have; any other is a typo that would otherwise change nothing.
SUITE_TABLES = ("matrix", "envs")


def load_suite_envs(path: str) -> dict[str, str]:
    """The environments a suite defines, name → SPEC: a TOML suite's ``[envs]`` table, or a Python
    suite's ``ENVS`` mapping (read after `load_suite` loaded the module)."""
    if path.endswith(".toml"):
        with open(path, "rb") as fh:
            table = tomllib.load(fh).get("envs", {})
    else:
        module = sys.modules.get("benchbed_suite_" + os.path.splitext(os.path.basename(path))[0])
        table = getattr(module, "ENVS", {}) if module is not None else {}
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise SpecError(f"suite {path!r}: [envs] maps names to SPEC strings, e.g. old = \"transformers==4.57.6\"")
    return {str(k): v for k, v in table.items()}


def load_suite(path: str) -> Matrix:
    """The suite's matrix; any problem with the file is a `SpecError` naming it."""
    if not os.path.isfile(path):
        raise SpecError(f"suite file {path!r} does not exist")
    if path.endswith(".toml"):
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"suite {path!r} is not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise SpecError(f"suite {path!r} is not UTF-8 text (TOML files are UTF-8)") from None
        except OSError as exc:
            raise SpecError(f"suite {path!r} cannot be read: {exc.strerror or exc}") from None
        unknown = sorted(set(data) - set(SUITE_TABLES))
        if unknown:
            raise SpecError(f"suite {path!r}: unknown table(s) or key(s) {', '.join(unknown)} "
                            f"(valid: {', '.join('[' + t + ']' for t in SUITE_TABLES)})")
        table = data.get("matrix")
        if not isinstance(table, dict):
            raise SpecError(f"suite {path!r} has no [matrix] table")
        return Matrix.from_mapping(table, where=f"suite {path!r}")
    if path.endswith(".py"):
        return _matrix_from_module(path)
    raise SpecError(f"suite {path!r} must be a .py suite module or a .toml file")


def _matrix_from_module(path: str) -> Matrix:
    name = "benchbed_suite_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"suite {path!r} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # registered, so tasks and runners the suite defines can be found again (by an isolated child)
    sys.modules[name] = module
    try:
        with _deadline(path):
            spec.loader.exec_module(module)
    except SystemExit as exc:
        sys.modules.pop(name, None)
        raise SpecError(f"suite {path!r} called sys.exit({exc.code!r}) while loading; a suite defines MATRIX "
                        f"and must not exit") from None
    except _TooLong:
        sys.modules.pop(name, None)
        raise SpecError(f"suite {path!r} did not finish loading within {_timeout():g} s "
                        f"(BENCHBED_SUITE_TIMEOUT sets the bound)") from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise SpecError(f"suite {path!r} failed to import: {exc.__class__.__name__}: {exc}") from None
    matrix: Any = getattr(module, "MATRIX", None)
    if not isinstance(matrix, Matrix):
        raise SpecError(f"suite {path!r} defines no MATRIX = benchbed.Matrix(...)")
    return matrix


class _TooLong(BaseException):
    """Raised into a suite module that is still loading at its deadline (a BaseException, so a
    suite's own ``except Exception`` does not swallow it)."""


def _timeout() -> float:
    try:
        return max(0.1, float(os.environ.get("BENCHBED_SUITE_TIMEOUT", LOAD_TIMEOUT_S)))
    except ValueError:
        return LOAD_TIMEOUT_S


@contextlib.contextmanager
def _deadline(path: str) -> Iterator[None]:
    """Stop the code inside at `_timeout()` seconds (SIGALRM; only the main thread can take it)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise _TooLong()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, _timeout())
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
