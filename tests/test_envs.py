"""Environments as an axis (issue #23): ``--env NAME=SPEC`` built offline from local wheels into a
cached environment, ``RUNNER@ENV`` runners measured in their environment's worker and paired with
the others in one window, parity across versions, and bad input as one line.

Everything installs from a folder of wheels the test writes (tests/wheels.py), with ``--no-index``:
no network. uv's and pip's caches go to the test's temporary folder, never the home folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pandas as pd
import pytest

from benchbed.env_cache import list_envs, prune_envs
from benchbed.envs import build_env, parse_env, split_runner
from benchbed.spec import SpecError
from conftest import REPO, run_cli
from wheels import bbtiny_wheels

SUITE = os.path.join(REPO, "tests", "plugins", "suite_versioned_runner.py")
INSTALLERS = ["pip"] + (["uv"] if shutil.which("uv") else [])


@pytest.fixture
def envdir(tmp_path, monkeypatch):
    """A private environment cache and installer caches, and bbtiny wheels 1.0 (no work), 1.5
    (16 matmuls of 256² per call, several times the model call) and 1.6 (answers scaled by 1.1)."""
    monkeypatch.setenv("BENCHBED_ENV_DIR", str(tmp_path / "envs"))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # uv's build locks, pip's build folders
    wheels = bbtiny_wheels(str(tmp_path / "wheels"), {"1.0": (0, 1.0), "1.5": (16, 1.0), "1.6": (0, 1.1)})
    return tmp_path, wheels


@pytest.mark.parametrize("text, words", [
    ("old", "--env must be NAME=SPEC"),
    ("=transformers==4.57", "--env must be NAME=SPEC"),
    ("old=", "--env must be NAME=SPEC"),
    ("old=transformers===", "is not a requirement specifier"),
    ("old=-r /nonexistent/reqs.txt", "requirements file '/nonexistent/reqs.txt' does not exist"),
])
def test_a_bad_env_is_one_line(text, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_env(text)


def test_specs_and_runner_names_parse():
    assert parse_env("new=transformers==5.2.0 tokenizers>=0.22").requirements == ("transformers==5.2.0",
                                                                                   "tokenizers>=0.22")
    assert parse_env("a=x==1,y==2").text == "x==1 y==2"
    # a comma before a version operator continues the requirement (issue #30)
    assert parse_env("old=transformers>=4.0,<5").requirements == ("transformers>=4.0,<5",)
    assert parse_env("old=transformers>=4.0,<5,tokenizers~=0.22 torch").requirements == (
        "transformers>=4.0,<5", "tokenizers~=0.22", "torch")
    assert split_runner("pipeline@old") == ("pipeline", "old") and split_runner("torch") == ("torch", None)


@pytest.mark.parametrize("tool", INSTALLERS)
def test_an_environment_is_built_offline_once_then_cached_listed_and_pruned(envdir, monkeypatch, tool):
    tmp, wheels = envdir
    monkeypatch.setenv("BENCHBED_INSTALLER", tool)
    spec = parse_env("mid=bbtiny==1.5")
    lines = []
    env = build_env(spec, (wheels,), True, progress=lines.append)
    assert not env.cached and env.tool == tool and lines and "building environment mid" in lines[0]
    out = subprocess.run([env.python, "-c", "import bbtiny, benchbed, torch; print(bbtiny.VERSION)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1.5"  # SPEC's version; benchbed and torch from this environment
    again = build_env(spec, (wheels,), True)
    assert again.cached and again.path == env.path and again.digest == env.digest
    other = build_env(parse_env("new=bbtiny==1.6"), (wheels,), True)
    assert other.digest != env.digest
    listed = {e["name"]: e for e in list_envs()}
    assert set(listed) == {"mid", "new"} and listed["mid"]["spec"] == "bbtiny==1.5"
    assert listed["mid"]["size_mb"] < 5  # only what SPEC added: the rest is this environment's
    assert set(prune_envs().removed) == {os.path.basename(env.path), os.path.basename(other.path)}
    assert not list_envs()


def test_a_spec_that_does_not_resolve_says_the_installers_words_and_leaves_nothing(envdir):
    tmp, wheels = envdir
    with pytest.raises(SpecError, match=r"--env bad: 'bbtiny==9\.9' did not install: .*bbtiny"):
        build_env(parse_env("bad=bbtiny==9.9"), (wheels,), True)
    assert not list_envs() and not [p for p in os.listdir(tmp / "envs") if not p.endswith(".lock")]


def _run(tmp, wheels, *args, run_id="r"):
    return run_cli("run", "--suite", SUITE, "--find-links", wheels, "--no-index", "--results", str(tmp / "results"),
                   "--run-id", run_id, "--min-time", "0.5", "--max-time", "3", *args)


@pytest.mark.slow
def test_versions_are_paired_in_one_window_and_a_slower_release_shows(envdir):
    tmp, wheels = envdir
    p = _run(tmp, wheels, "--env", "a=bbtiny==1.0", "--env", "b=bbtiny==1.0", "--env", "mid=bbtiny==1.5",
             "--runner", "versioned@a,versioned@b,versioned@mid", "--reference", "versioned@a")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    df = pd.read_parquet(tmp / "results" / "r").set_index("runner")
    assert (df["status"] == "ok").all() and df.loc["versioned@b", "parity_ok"] and df.loc["versioned@mid", "parity_ok"]
    assert df.loc["versioned@a", "env_name"] == "a" and df.loc["versioned@mid", "env_spec"] == "bbtiny==1.5"
    assert df.loc["versioned@a", "env_packages_digest"] == df.loc["versioned@b", "env_packages_digest"]
    assert df.loc["versioned@a", "env_packages_digest"] != df.loc["versioned@mid", "env_packages_digest"]
    blocks = df.loc["versioned@b", "sample_blocks"]
    assert len(set(blocks)) >= 4  # interleaved across the workers, block by block
    aa, slow = df.loc["versioned@b", "ref_ratio"], df.loc["versioned@mid", "ref_ratio"]
    if not df["interfered"].any():  # a busy neighbour moves a ratio; the record says so
        assert 0.85 < aa < 1.18, aa
    assert slow > 1.5, slow  # 16 matmuls of 256² on a bert-tiny call
    report = tmp / "report.html"
    assert run_cli("report", str(tmp / "results"), "-o", str(report)).returncode == 0
    html = report.read_text()
    assert "Environments and bisection" in html and "bbtiny==1.5" in html


@pytest.mark.slow
def test_a_version_that_changes_answers_is_a_parity_mismatch_across_environments(envdir):
    tmp, wheels = envdir
    p = _run(tmp, wheels, "--env", "old=bbtiny==1.0", "--env", "new=bbtiny==1.6", "--runner",
             "versioned@old,versioned@new", "--reference", "versioned@old", "--min-samples", "5")
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-2000:]
    df = pd.read_parquet(tmp / "results" / "r").set_index("runner")
    assert df.loc["versioned@new", "parity_ok"] == False  # noqa: E712
    assert "versioned@old" in df.loc["versioned@new", "parity_detail"]
    assert "PARITY MISMATCH" in p.stdout


@pytest.mark.parametrize("args, words", [
    (["--runner", "versioned@nowhere"], "runner 'versioned@nowhere' names environment 'nowhere', which is not "
                                        "defined (defined: a; define it with --env nowhere=SPEC)"),
    (["--runner", "versioned@a", "--scenario", "server"], "RUNNER@ENV runners are measured in the latency scenario"),
    (["--runner", "versioned@a", "--pairing", "sequential"], "--pairing sequential is not supported"),
    (["--runner", "versioned@a", "--cluster", "ray"], "--env with --cluster"),
    (["--runner", "versioned@a", "--compiled", "true"], "RUNNER@ENV runners are measured eager"),
    (["--env", "a=bbtiny==1.0", "--runner", "versioned@a"], "environment 'a' is defined twice"),
])
def test_bad_environment_input_is_one_line_exit_2_nothing_written(envdir, args, words):
    tmp, wheels = envdir
    p = _run(tmp, wheels, "--env", "a=bbtiny==1.0", *args)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and words in lines[0], p.stderr
    assert not (tmp / "results").exists() and not (tmp / "envs").exists()


def test_a_spec_that_does_not_resolve_is_exit_2_with_the_installers_message(envdir):
    tmp, wheels = envdir
    p = _run(tmp, wheels, "--env", "a=bbtiny==9.9", "--runner", "versioned@a")
    last = p.stderr.strip().splitlines()[-1]
    assert p.returncode == 2 and "--env a: 'bbtiny==9.9' did not install" in last, p.stderr
    assert not (tmp / "results").exists()


def test_a_toml_suite_defines_environments_and_envs_lists_builds_and_prunes_them(envdir):
    tmp, wheels = envdir
    suite = tmp / "suite.toml"
    suite.write_text('[matrix]\ntask = ["text-classification"]\nmodel = ["bert-tiny"]\n'
                     'runner = ["torch", "torch@a"]\n\n[envs]\na = "bbtiny==1.0"\n')
    from argparse import Namespace

    from benchbed.commands.plan import env_specs
    from benchbed.suite import load_suite

    args = Namespace(env=["b=bbtiny==1.5"], suite=str(suite))
    assert [(e.name, e.text) for e in env_specs(args, load_suite(str(suite)))] == [("a", "bbtiny==1.0"),
                                                                                  ("b", "bbtiny==1.5")]
    p = run_cli("envs", "build", "--env", "a=bbtiny==1.0", "--find-links", wheels, "--no-index")
    assert p.returncode == 0 and p.stdout.startswith("a: ") and "built in" in p.stdout, p.stderr
    listed = run_cli("envs", "list")
    assert "bbtiny==1.0" in listed.stdout and "1 environment(s)" in listed.stdout
    assert "removed 1 environment(s)" in run_cli("envs", "prune").stdout
    assert "no environments" in run_cli("envs", "list").stdout


# -- bisection ---------------------------------------------------------------------------------------

def _bisect(tmp, *args):
    return run_cli("bisect", "--suite", SUITE, "--results", str(tmp / "results"), "--min-time", "0.5", "--max-time",
                   "2", "--threshold", "0.5", "--max-rounds", "4", "--json", str(tmp / "bisect.json"), *args)


@pytest.mark.slow
def test_bisecting_releases_names_the_first_slow_one_and_steps_around_a_broken_wheel(envdir):
    """bbtiny 1.0-1.7 where 1.5 adds 16 matmuls per call and 1.3 is not a wheel at all: bisect
    names 1.5 within ceil(log2 8) + 2 steps, with 1.3 recorded as skipped. The threshold is wide
    (50%) so a busy neighbour cannot blur a 5x change into "undecided"."""
    import json

    tmp, _ = envdir
    wheels = bbtiny_wheels(str(tmp / "w8"), {f"1.{i}": ((16 if i >= 5 else 0), 1.0) for i in range(8)},
                           broken=("1.3",))
    p = _bisect(tmp, "--package", "bbtiny", "--good", "1.0", "--bad", "1.7", "--find-links", wheels, "--no-index",
                "--explain")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = json.loads((tmp / "bisect.json").read_text())
    assert out["culprit"] == "1.5" and out["direction"] == "regression (slower)", out
    # --explain: the culprit against the point before it, profiled in their environments' workers
    [why] = out["explanations"]
    assert (why["runner"], why["reference"]) == ("versioned@1.5", "versioned@1.4")
    assert "why versioned@1.5 vs versioned@1.4" in p.stdout
    if why["verdict"] == "refused":  # holds, or the records say the machine was busy
        assert "busy machine" in why["reason"], why
    else:
        top = max(why["parts"], key=lambda x: abs(x["delta_s"]))
        assert (top["stage"], top["name"]) == ("forward", "bbtiny:work"), why["parts"]
    assert len(out["steps"]) <= 3 + 2  # ceil(log2 8) + 2 (a skipped point is a step)
    assert "first bad version: 1.5" in p.stdout
    skipped = [s for s in out["steps"] if s["verdict"] == "skipped"]
    assert all(s["point"] == "1.3" and "did not install" in s["note"] for s in skipped)
    df = pd.read_parquet(out["run"])
    assert set(df["env_name"].dropna()) >= {"1.0", "1.7", "1.5"}  # one record per step, in its environment


def _git_repo(path, commits=12, slow_from=9):
    """A git repository of an installable package `bbrepo`, `commits` commits; from commit
    `slow_from` on, bbrepo.work does 16 matmuls of 256²."""
    import textwrap

    os.makedirs(path / "bbrepo")
    (path / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "bbrepo"
        version = "0.1"
        [tool.setuptools]
        packages = ["bbrepo"]
        """))
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    for k in range(1, commits + 1):
        from wheels import BBTINY

        (path / "bbrepo" / "__init__.py").write_text(
            BBTINY.format(version=f"c{k}", matmuls=16 if k >= slow_from else 0, scale=1.0))
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", f"commit {k}"], check=True)
    log = subprocess.run([*git, "rev-list", "--reverse", "HEAD"], capture_output=True, text=True, check=True)
    return log.stdout.split()


@pytest.mark.slow
def test_bisecting_commits_names_the_commit_that_added_work(envdir, tmp_path):
    import json

    tmp, _ = envdir
    repo = tmp_path / "repo"
    shas = _git_repo(repo)
    suite = tmp_path / "suite_repo.py"
    suite.write_text(open(SUITE).read().replace("import bbtiny", "import bbrepo as bbtiny")
                     .replace('NAME = "versioned"', 'NAME = "versioned-repo"').replace('("versioned",)',
                                                                                       '("versioned-repo",)'))
    p = run_cli("bisect", "--suite", str(suite), "--results", str(tmp / "results"), "--min-time", "0.5",
                "--max-time", "2", "--threshold", "0.5", "--max-rounds", "4", "--json", str(tmp / "bisect.json"),
                "--repo", str(repo), "--good", shas[0], "--bad", shas[-1], "--no-index")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = json.loads((tmp / "bisect.json").read_text())
    assert out["culprit"] == shas[8][:12], (out, shas)


@pytest.mark.parametrize("args, words", [
    (["--package", "bbtiny", "--good", "1.0", "--bad", "1.0"], "--good and --bad are the same version (1.0)"),
    (["--package", "bbtiny", "--good", "1.0", "--bad", "2.0"], "--bad 2.0: bbtiny has no such version "
                                                               "(valid: 1.0, 1.5, 1.6)"),
    (["--package", "nosuchpkg", "--good", "1.0", "--bad", "2.0"], "--package 'nosuchpkg': no versions found"),
    (["--package", "bbtiny", "--good", "1.0", "--bad", "1.5", "--suite", "-", "--runner", "versioned,torch"],
     "bisect measures one cell with one runner; the options select 2 cases"),
])
def test_bad_bisect_input_is_one_line_exit_2_nothing_written(envdir, args, words):
    tmp, wheels = envdir
    base = ["bisect", "--suite", SUITE, "--find-links", wheels, "--no-index", "--results", str(tmp / "results")]
    if "--suite" in args:
        i = args.index("--suite")
        args = args[:i] + args[i + 2:]
    p = run_cli(*base, *args)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and words in lines[0], p.stderr
    assert not (tmp / "results").exists()


@pytest.mark.slow
def test_nightly_names_packages_from_history_and_bisects_them(envdir):
    """A history change point at an environment change (bbtiny 1.0 -> 1.7, as `benchbed history
    --json` writes it) becomes a bisection whose culprit lands in the job summary; hardware
    changes are said and not bisected."""
    import importlib.util
    import json

    tmp, _ = envdir
    spec = importlib.util.spec_from_file_location("nightly_bisect", os.path.join(REPO, "scripts", "nightly_bisect.py"))
    nb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nb)
    assert nb.package_changes("env_transformers: 5.23.0 -> 5.24.0; env_cpu: A -> B; env_torch: 2.12.0+cpu -> "
                              "2.13.0+cpu") == [("transformers", "5.23.0", "5.24.0"), ("torch", "2.12.0", "2.13.0")]
    wheels = bbtiny_wheels(str(tmp / "w4"), {f"1.{i}": ((16 if i >= 2 else 0), 1.0) for i in range(4)})
    p = _run(tmp, wheels, "--env", "x=bbtiny==1.0", "--runner", "versioned@x", "--reference", "versioned@x",
             "--min-samples", "5", "--max-time", "1")
    assert p.returncode == 0, p.stderr[-2000:]
    case_id = pd.read_parquet(tmp / "results" / "r")["case_id"].iloc[0]
    history = {"change_points": [
        {"case_id": case_id, "label": "versioned b1", "kind": "regression", "run_id": "n2",
         "env_change": "env_bbtiny: 1.0 -> 1.3"},
        {"case_id": case_id, "label": "versioned b1", "kind": "regression", "run_id": "n2",
         "env_change": "env_cpu: Xeon A -> Xeon B"}]}
    (tmp / "history.json").write_text(json.dumps(history))
    summary = tmp / "summary.md"
    q = subprocess.run([os.environ.get("PYTHON", __import__("sys").executable), os.path.join(REPO, "scripts",
                        "nightly_bisect.py"), str(tmp / "history.json"), str(tmp / "results"), "--summary",
                        str(summary), "--bisect-results", str(tmp / "bisections"), "--", "--suite", SUITE, "--find-links", wheels,
                        "--no-index", "--threshold", "0.5", "--min-time", "0.5", "--max-time", "2", "--max-rounds", "4"],
                       capture_output=True, text=True, cwd=REPO, timeout=900)
    assert q.returncode == 0, q.stdout[-2000:] + q.stderr[-2000:]
    text = summary.read_text()
    assert "**culprit bbtiny 1.2**" in text, text
    assert "not a package change, not bisected" in text


def test_a_failed_build_leaves_a_lock_that_prune_removes(envdir):
    tmp, wheels = envdir
    with pytest.raises(SpecError):
        build_env(parse_env("bad=bbtiny==9.9"), (wheels,), True)
    assert [p for p in os.listdir(tmp / "envs") if p.endswith(".lock")]
    pruned = prune_envs()
    assert pruned.locks and not os.listdir(tmp / "envs")


def test_build_refuses_a_key_folder_benchbed_did_not_make(envdir):
    from benchbed.envs import env_key

    tmp, wheels = envdir
    spec = parse_env("mid=bbtiny==1.5")
    foreign = tmp / "envs" / env_key(spec, (wheels,), True)
    foreign.mkdir(parents=True)
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(SpecError, match="benchbed did not make it"):
        build_env(spec, (wheels,), True)
    assert (foreign / "keep.txt").read_text() == "mine"


def test_a_folder_for_r_and_a_huge_spec_are_short_lines(tmp_path):
    with pytest.raises(SpecError, match="is a folder; -r takes a requirements file"):
        parse_env(f"old=-r {tmp_path}")
    for text in ("x" * 100_000, "a=" + "b" * 100_000 + "=="):
        with pytest.raises(SpecError) as err:
            parse_env(text)
        assert len(str(err.value)) < 700 and "chars)" in str(err.value)


def test_html_text_has_no_terminal_escapes():
    from benchbed.report.html import esc

    assert esc("mini\x1b[31mlm\x1b[0m<b>\x07") == "minilm&lt;b&gt;"


def test_a_bad_good_revision_is_named_and_nothing_is_written(envdir, tmp_path):
    tmp, _ = envdir
    repo = tmp_path / "repo"
    shas = _git_repo(repo, commits=2)
    p = run_cli("bisect", "--suite", SUITE, "--results", str(tmp / "results"), "--repo", str(repo),
                "--good", "nosuchrev", "--bad", shas[-1], "--no-index")
    assert p.returncode == 2 and "--good 'nosuchrev' is not a commit of" in p.stderr, p.stderr
    assert not (tmp / "results").exists()


def test_an_env_no_runner_uses_is_not_built(envdir):
    tmp, wheels = envdir
    p = run_cli("run", "--task", "text-classification", "--model", "synthetic:bert-tiny", "--batch-size", "1",
                "--seq-len", "16", "--runner", "torch", "--env", "unused=bbtiny==9.9", "--find-links", wheels,
                "--no-index", "--min-time", "0.02", "--max-time", "0.1", "--results", str(tmp / "results"))
    assert p.returncode == 0 and "building environment" not in p.stderr, p.stderr[-2000:]
