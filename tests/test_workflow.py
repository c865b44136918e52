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


def test_every_run_of_the_workflow_has_a_budget(wf):
    """Issue #31: the nightly's runs are bounded, and what a quick night leaves goes to imprecise ratios."""
    parser = build_parser()
    runs = [parser.parse_args(a) for s in _runs(wf) for a in _commands(s, "benchbed")]
    runs = [ns for ns in runs if ns.command == "run"]
    assert len(runs) == 2 and all(ns.budget not in (None, "off") for ns in runs)
    suites = [a for s in _runs(wf) for a in _commands(s, "pytest")]
    assert suites and all(any(a.startswith("--benchbed-budget") for a in args) for args in suites)


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


def test_the_gpu_job_pins_torch_installs_what_the_check_drives_and_its_options_exist(wf):
    import importlib.util

    gpu = wf["jobs"]["gpu"]
    cpu_install = next(r for r in _runs(wf) if "pip install torch==2.13.0" in r)
    pinned = re.search(r"torch==([\d.]+)", cpu_install).group(1)
    assert gpu["env"]["TORCH_VERSION"] == pinned  # one torch for both histories
    script = "\n".join(s["run"] for s in gpu["steps"] if "run" in s)
    assert 'pip install "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX"' in script
    extras = re.search(r"pip install -e '\.\[([^\]]+)\]'", script).group(1).split(",")
    with open(os.path.join(REPO, "pyproject.toml")) as fh:
        project = fh.read()
    assert {"onnx-gpu", "train"} <= set(extras) and all(f"\n{e} = [" in project for e in extras)
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(REPO, "scripts", "gpu_check.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    calls = list(_commands(script, "python scripts/gpu_check.py"))
    assert calls
    for args in calls:
        assert mod.parse(args).budget <= 480  # exits (fails the test) on an unknown option
