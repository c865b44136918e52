"""The house's layers are contracts (issue #32): `lint-imports` keeps them, and an upward import,
even one inside a function, breaks them. Run on a copy of the package, so the checkout is never
changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

LINT = shutil.which("lint-imports") or shutil.which("lint-imports", path=os.path.dirname(sys.executable))

pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is not installed (the [test] extra has it)")


def _lint(root: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([LINT, "--config", os.path.join(root, "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(os.path.join(REPO, "benchbed"), root / "benchbed",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(REPO, "pyproject.toml"), root / "pyproject.toml")
    return root


def test_the_checkout_keeps_every_contract(copy):
    p = _lint(str(copy))
    assert p.returncode == 0 and "0 broken" in p.stdout, p.stdout[-3000:]


@pytest.mark.parametrize("module, line", [
    # a low floor reaching the top, inside a function (the kind of edge #21's walk missed)
    ("benchbed/serving/host.py", "def _upward():\n    from ..execute.workbench import Workbench\n    return Workbench\n"),
    # a circle inside one floor's package
    ("benchbed/execute/records.py", "def _circle():\n    from .cell import measure_cell\n    return measure_cell\n"),
])
def test_an_upward_or_circular_import_breaks_a_contract(copy, tmp_path, module, line):
    bad = tmp_path / "bad"
    shutil.copytree(copy, bad)
    with open(bad / module, "a") as fh:
        fh.write("\n\n" + line)
    p = _lint(str(bad))
    assert p.returncode != 0 and "broken" in p.stdout, p.stdout[-3000:]


def test_every_module_of_the_package_has_a_floor():
    """A module left out of the layers contract would be unconstrained: each top-level module and
    subpackage of benchbed is named on a floor."""
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as fh:
        contracts = tomllib.load(fh)["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    named = {m.strip() for layer in layers for m in layer.replace("|", ":").split(":")}
    here = os.path.join(REPO, "benchbed")
    top = {f"benchbed.{n[:-3] if n.endswith('.py') else n}" for n in os.listdir(here)
           if (n.endswith(".py") and n != "__init__.py") or os.path.isfile(os.path.join(here, n, "__init__.py"))}
    assert top - named == set(), f"modules on no floor: {sorted(top - named)}"
