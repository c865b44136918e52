"""The nightly workflow parses, runs on a schedule and by hand, and calls commands that exist."""

import os
import re
import shlex

import pytest

from benchbed.cli import build_parser

from conftest import REPO

yaml = pytest.importorskip("yaml")
WORKFLOW = os.path.join(REPO, ".github", "workflows", "nightly.yml")


@pytest.fixture(scope="module")
def wf():
    with open(WORKFLOW) as fh:
        return yaml.safe_load(fh)


def _runs(wf):
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                yield step["run"]


def test_triggers_and_jobs(wf):
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as True
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    assert set(wf["jobs"]) == {"cpu", "gpu"}
    assert "self-hosted" in wf["jobs"]["gpu"]["runs-on"]
    uses = [s.get("uses", "") for j in wf["jobs"].values() for s in j["steps"]]
    assert any(u.startswith("actions/upload-artifact") for u in uses)
    assert any(u.startswith("actions/cache/restore") for u in uses)
    assert any(u.startswith("actions/cache/save") for u in uses)


def test_install_step_is_the_readme_command(wf):
    readme = open(os.path.join(REPO, "README.md")).read()
    install = next(r for r in _runs(wf) if "pip install torch==2.13.0" in r).strip()
    assert install in readme


def _commands(script, program):
    for line in script.replace("\\\n", " ").splitlines():
        line = re.sub(r"\$\{\{[^}]*\}\}", "1", line)
        m = re.search(rf"(?:^|\s|&&\s*){program}\s(.*)", line)
        if m:
            rest = re.split(r"\s(?:&&|\|\||;|\|)\s", m.group(1))[0]
            yield shlex.split(rest.replace('"$HISTORY"', "history").replace('"$GITHUB_STEP_SUMMARY"', "s.md"))


def test_every_benchbed_command_parses(wf):
    parser = build_parser()
    seen = set()
    for script in _runs(wf):
        for args in _commands(script, "benchbed"):
            ns = parser.parse_args(args)  # exits (fails the test) on an unknown command or option
            seen.add(ns.command)
    assert {"run", "compare", "history", "report"} <= seen


def test_pytest_options_used_exist(wf):
    plugin = open(os.path.join(REPO, "benchbed", "pytest_plugin.py")).read()
    found = False
    for script in _runs(wf):
        for args in _commands(script, "pytest"):
            found = True
            assert args[0] == "suites" and "--benchmark" in args
            for flag in (a for a in args if a.startswith("--benchbed")):
                assert f'"{flag}"' in plugin, flag
    assert found
