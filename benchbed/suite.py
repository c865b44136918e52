"""Loading a suite file for ``benchbed run --suite``: a pytest suite module that defines ``MATRIX``
(the same file ``pytest suites --benchmark`` runs), or a TOML file with a ``[matrix]`` table."""

from __future__ import annotations

import importlib.util
import os
import sys
import tomllib
from typing import Any

from .spec import Matrix, SpecError

__all__ = ["load_suite"]


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
        spec.loader.exec_module(module)
    except Exception as exc:
        raise SpecError(f"suite {path!r} failed to import: {exc.__class__.__name__}: {exc}") from None
    matrix: Any = getattr(module, "MATRIX", None)
    if not isinstance(matrix, Matrix):
        raise SpecError(f"suite {path!r} defines no MATRIX = benchbed.Matrix(...)")
    return matrix
