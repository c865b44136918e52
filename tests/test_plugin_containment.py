"""A plug-in that raises, returns junk or declares a wrong column type costs its own records, named,
never the run (issue #30); built-in names cannot be taken by a plug-in."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from conftest import REPO, run_cli

SUITE = os.path.join(REPO, "tests", "plugins", "suite_bad_plugins.py")
FAST = ["--min-time", "0.02", "--max-time", "0.1", "--task", "text-classification", "--model", "synthetic:bert-tiny",
        "--batch-size", "1", "--seq-len", "16"]


@pytest.mark.parametrize("launcher, words, errors", [
    ("raises", "launcher 'raises': measure raised RuntimeError: the cluster is on fire", 2),
    ("junk", "launcher 'junk': measure returned {'not': 'results'}, not (results, stored)", 2),
    ("nothing", "launcher 'nothing': measure returned no record for 2 of the job's 2 case(s)", 2),
    ("drops-one", "launcher 'drops-one': measure returned no record for 1 of the job's 2 case(s)", 1),
])
def test_a_failing_launcher_gives_error_records_naming_it(tmp_path, launcher, words, errors):
    p = run_cli("run", "--suite", SUITE, "--launcher", launcher, *FAST, "--results", str(tmp_path / "r"),
                "--run-id", "x")
    assert p.returncode == 1 and "Traceback" not in p.stderr + p.stdout, p.stderr[-2000:]
    df = pd.read_parquet(tmp_path / "r" / "x")
    assert len(df) == 2 and (df["status"] == "error").sum() == errors
    assert words in " ".join(df["message"].dropna()) and "\x1b" not in p.stdout + p.stderr


def test_a_scenario_column_of_the_wrong_type_is_dropped_and_said_not_the_cell_lost(tmp_path):
    p = run_cli("run", "--suite", SUITE, "--scenario", "wrong-column", *FAST, "--results", str(tmp_path / "r"),
                "--run-id", "x")
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    df = pd.read_parquet(tmp_path / "r" / "x")
    assert len(df) == 2 and (df["status"] == "ok").all() and df["wrong_count"].isna().all()
    assert df["message"].str.contains("column wrong_count dropped: not the int64 its scenario declares").all()


@pytest.mark.parametrize("code", [
    "from benchbed.scenarios import Scenario, register_scenario\n"
    "register_scenario(Scenario(name='latency', description='mine', driver='x:y'))\n",
    "from benchbed.execute.launchers import Launcher, register_launcher\n"
    "@register_launcher\nclass L(Launcher):\n    NAME = 'local'\n",
])
def test_a_plugin_cannot_take_a_builtin_name(tmp_path, code):
    suite = tmp_path / "suite_taker.py"
    suite.write_text(code + "from benchbed import Matrix\nMATRIX = Matrix(task=('text-classification',), "
                            "model=('synthetic:bert-tiny',))\n")
    p = run_cli("run", "--suite", str(suite), *FAST, "--results", str(tmp_path / "r"))
    assert p.returncode == 2 and "built-in" in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_a_traceback_that_reaches_the_door_is_cleaned_of_escape_codes(tmp_path):
    """A bug's traceback, in a real `benchbed` process: the console script's excepthook cleans it."""
    import subprocess
    import sys

    code = ("import sys, benchbed_cli, benchbed.cli as c\n"
            "def boom(args):\n    raise RuntimeError('\\x1b[31ma plug-in bug\\x1b[0m\\x07')\n"
            "c.COMMANDS['list'].main = boom\nsys.argv = ['benchbed', 'list']\nsys.exit(benchbed_cli.main())\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 1 and "RuntimeError: a plug-in bug" in p.stderr and "Traceback" in p.stderr, p.stderr
    assert "\x1b" not in p.stderr and "\x07" not in p.stderr
