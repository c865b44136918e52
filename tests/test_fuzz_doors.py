"""Every door fuzzed with hypothesis: each option of each subcommand, TOML and Python suite text,
and records handed back after a round trip through other tools.

The property is the one users rely on: the exit code is a documented one, no traceback escapes,
and a refusal (exit 2) writes nothing. The probe of 2026-12-01 (issue 20) supplies the seed
examples. ``run`` is driven through its whole door (parsing, suite loading, matrix validation,
results-folder checks) up to the point where it would start measuring: there `Session.run` raises
a marker, since measuring is not what is fuzzed here (end-to-end tests run it for real).

Profiles: ``ci`` (the default here, well under a minute) and ``long`` (``HYPOTHESIS_PROFILE=long``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os

import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import run_cli  # noqa: E402

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("long", max_examples=1500, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Documented exit codes of the ``benchbed`` command (cli.py's docstring).
EXITS = {0, 1, 2, 3, 4}

#: The hostile values of the probe (issue 20), tried for every option.
SEEDS = ["", " ", ".", "..", "1.2.3", "1..%", "p99:.", "a=1.2.3", "=5%", "-1", "0", "nan", "inf", "-inf", "1e308",
         "123456789012345678901234567890", "9" * 5000, "\udcff\udcfe", "\x1b[31mred\x07", "a\x00b", "../../etc",
         "/", "/dev/null", "x" * 300, "torch,torch", ",", "1,,2", "ray://", "%", "5%", "p99:5%", "0/0", "3/2",
         "1/1", "true", "{}", "[1]", "\n", "é"]

hostile = st.one_of(
    st.sampled_from(SEEDS),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=24),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


class WouldMeasure(Exception):
    """`run` got through its door: every value was accepted and measuring would start."""


def _options(command: str) -> list[tuple[str, bool]]:
    """(option string, takes a value) of every option of `command`, from the real parser."""
    from benchbed.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for action in sub.choices[command]._actions:
        if action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            out.append((max(action.option_strings, key=len), action.nargs != 0))
    return out


@pytest.fixture(autouse=True)
def in_a_scratch_folder(tmp_path_factory, monkeypatch):
    """Every fuzzed command runs in a folder of its own: a relative path among the fuzzed values
    (`-o 0`, `--markdown 1.2.3`) lands there, never in the checkout."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def _main(argv: list[str]) -> tuple[int, str]:
    """`benchbed.cli.main` in this process: (exit code, stderr). Any exception but argparse's exit
    and the measuring marker is the traceback a user would see, and fails the test. On exit 2
    nothing may have appeared in the working folder."""
    from benchbed.cli import main

    before = sorted(os.listdir("."))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except WouldMeasure:
            code = 0
    if code == 2:
        assert sorted(os.listdir(".")) == before, (argv, "a refusal wrote into the working folder")
    return code, err.getvalue()


def _written(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A real run of the quick matrix's smallest cell (two runners, one record each) as run ``a``,
    and its records again as a later run ``b`` (written back by pandas, as a user would)."""
    root = tmp_path_factory.mktemp("fuzz-records")
    p = run_cli("run", "--quick", "--task", "text-classification", "--batch-size", "1", "--seq-len", "16",
                "--min-time", "0.02", "--max-time", "0.1", "--results", str(root / "res"), "--run-id", "a", "-q")
    assert p.returncode == 0, p.stderr[-2000:]
    df = pd.read_parquet(root / "res" / "a")
    (root / "res" / "b").mkdir()
    df.assign(run_id="b", started_at=df["started_at"] + pd.Timedelta(seconds=60)).to_parquet(
        root / "res" / "b" / "run-b.parquet")
    return root / "res"


@pytest.fixture
def no_measuring(monkeypatch):
    from benchbed.engine import Session

    def refuse(self, *args, **kwargs):
        raise WouldMeasure()

    monkeypatch.setattr(Session, "run", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BENCHBED_SUITE_TIMEOUT", "5")


RUN_OPTIONS = [o for o in _options("run") if o[0] not in ("--cluster", "--cluster-select", "--cluster-ship-code")]


@given(picks=st.lists(st.tuples(st.sampled_from(RUN_OPTIONS), hostile), min_size=1, max_size=3))
def test_run_every_option_documented_exit_no_traceback_nothing_written_on_refusal(tmp_path, no_measuring, picks):
    import shutil

    root = tmp_path / "fuzz-run"
    shutil.rmtree(root, ignore_errors=True)
    argv = ["run", "--quick", "--results", str(root / "res"), "-q"]
    for (option, takes_value), value in picks:
        argv += [option, value] if takes_value else [option]
    code, err = _main(argv)
    assert code in EXITS, (argv, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        assert _written(root) == [], argv
        assert len(err.strip().splitlines()) == 1, (argv, err)


@pytest.mark.parametrize("command", ["compare", "history", "report", "merge", "list"])
def test_every_option_of_the_reading_commands(records, tmp_path, command):
    options = _options(command) or [("--help", False)]
    ids = [records / "a", records / "b"]

    @given(picks=st.lists(st.tuples(st.sampled_from(options), hostile), min_size=1, max_size=2))
    @settings(max_examples=min(8, settings().max_examples) if command == "report" else settings().max_examples)
    def check(picks):
        import shutil

        out = tmp_path / "out"
        shutil.rmtree(out, ignore_errors=True)  # what an earlier example wrote is not this one's
        positional = {"compare": [str(ids[0]), str(ids[1])], "history": [str(records)], "report": [str(records)],
                      "merge": [str(records)], "list": []}[command]
        argv = [command, *positional]
        if command in ("report", "merge"):
            argv += ["-o", str(out / ("r.html" if command == "report" else "m"))]
        for (option, takes_value), value in picks:
            argv += [option, value] if takes_value else [option]
        before = _written(records)
        code, err = _main(argv)
        assert code in EXITS, (argv, err)
        assert "Traceback" not in err, (argv, err)
        if code == 2:
            assert _written(out) == [] and _written(records) == before, argv

    check()


@given(threshold=hostile)
def test_a_malformed_threshold_is_a_usage_error_never_a_regression(records, threshold):
    # a run against itself: no real change exists, so exit 1 could only be the typo read as a threshold
    code, err = _main(["compare", str(records / "a"), str(records / "a"), "--threshold", threshold])
    assert code in (0, 2, 3), (threshold, err)  # never 1 ("regression") on a typo
    assert "Traceback" not in err


# ---- suites -----------------------------------------------------------------------------------

TOML_KEYS = ["task", "model", "runner", "device", "dtype", "batch_size", "seq_len", "new_tokens", "options",
             "reference", "scenario", "inputs", "attn_impl", "compiled", "typo"]
toml_values = st.one_of(
    st.sampled_from(['["text-classification"]', '["synthetic:bert-tiny"]', "5", "[1, 2]", '"x"', "{}", "{typo = 1}",
                     "123456789012345678901234567890", "[123456789012345678901234567890]", '""', "[]", "true",
                     "nan", "-1", '["fp32", "fp32"]', '{compile_mode = "default"}']),
    st.text(max_size=12).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'))


@given(extra=st.lists(st.tuples(st.sampled_from(TOML_KEYS), toml_values), max_size=3),
       table=st.sampled_from(["matrix", "matrix", "extra", "Matrix"]), raw=st.binary(max_size=8))
def test_toml_suites_load_or_are_refused_in_one_line(tmp_path, no_measuring, extra, table, raw):
    lines = [f"[{table}]", 'task = ["text-classification"]', 'model = ["synthetic:bert-tiny"]']
    lines += [f"{k} = {v}" for k, v in dict(extra).items()]
    suite = tmp_path / "s.toml"
    suite.write_bytes("\n".join(lines).encode() + b"\n" + (b"# " + raw if raw else b""))
    root = tmp_path / "fuzz-toml"
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    code, err = _main(["run", "--suite", str(suite), "--results", str(root), "-q"])
    assert code in (0, 2), (lines, err)
    assert "Traceback" not in err
    if code == 2:
        assert _written(root) == [] and len(err.strip().splitlines()) == 1, err


PY_SUITES = [
    "import sys\nsys.exit(3)\n",
    "import sys\nsys.exit(0)\n",
    "raise RuntimeError('boom')\n",
    "MATRIX = 5\n",
    "from benchbed import Matrix\nMATRIX = Matrix(task=['text-classification'], model=['synthetic:bert-tiny'], options=5)\n",
    "from benchbed import Matrix\nMATRIX = Matrix(task=['text-classification'], model=['synthetic:bert-tiny'], "
    "options=(('compile_mode', object()),))\n",
    "from benchbed import Matrix\nMATRIX = Matrix(task=['text-classification'], model=['synthetic:bert-tiny'], workload=5)\n",
    "from benchbed import Matrix\nclass M(Matrix):\n    def cases(self):\n        raise RuntimeError('boom')\n"
    "MATRIX = M(task=['text-classification'], model=['synthetic:bert-tiny'])\n",
    "while True:\n    pass\n",
    "from benchbed import Matrix\nMATRIX = Matrix(task=['text-classification'], model=['synthetic:bert-tiny'], "
    "batch_size=[123456789012345678901234567890])\n",
    "from benchbed import Matrix\nMATRIX = Matrix(task=['text-classification'], model=['synthetic:bert-tiny'], "
    "runner=['torch', 'torch'])\n",
]


@pytest.mark.parametrize("text", PY_SUITES, ids=range(len(PY_SUITES)))
def test_python_suites_that_misbehave_are_one_line_and_exit_2(tmp_path, no_measuring, monkeypatch, text):
    monkeypatch.setenv("BENCHBED_SUITE_TIMEOUT", "1")
    suite = tmp_path / "bad_suite.py"
    suite.write_text(text)
    code, err = _main(["run", "--suite", str(suite), "--results", str(tmp_path / "r"), "-q"])
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


# ---- records handed back ---------------------------------------------------------------------

MUTATIONS = ["null", "float", "category", "string", "huge", "negative", "drop"]
KEY = ["batch_size", "run_id", "case_id", "task", "model", "device", "runner", "seq_len", "new_tokens",
       "samples_s", "lat_median_s", "started_at", "schema_version", "pass_index", "status", "options"]


def _mutate(df: pd.DataFrame, column: str, how: str) -> pd.DataFrame:
    df = df.copy()
    if column not in df.columns:  # dropped by an earlier change
        return df
    if how == "null":
        df[column] = df[column].astype(object)
        df.loc[df.index[0], column] = None
    elif how == "float" and pd.api.types.is_numeric_dtype(df[column]):
        df[column] = df[column].astype(float)
    elif how == "category":
        df[column] = df[column].astype(str).astype("category")
    elif how == "string":
        df[column] = df[column].astype(str)
    elif how == "huge":
        df["samples_s"] = [[1e308] * len(s) for s in df["samples_s"]]
    elif how == "negative":
        df["lat_median_s"] = -1.0
    elif how == "drop":
        df = df.drop(columns=[column])
    return df


@given(changes=st.lists(st.tuples(st.sampled_from(KEY), st.sampled_from(MUTATIONS)), min_size=1, max_size=2),
       command=st.sampled_from(["compare", "history", "merge"]))
def test_records_handed_back_in_any_shape_give_a_documented_exit(records, tmp_path, changes, command):
    df = pd.read_parquet(records / "b")
    for column, how in changes:
        df = _mutate(df, column, how)
    handed = tmp_path / "handed.parquet"
    df.to_parquet(handed)
    # against the records they came from: no real change exists, so 1 would be a misreading
    argv = {"compare": ["compare", str(records / "b"), str(handed)],
            "history": ["history", str(records / "b"), str(handed)],
            "merge": ["merge", str(handed), "-o", str(tmp_path / "merged")]}[command]
    code, err = _main(argv)
    assert code in (0, 2, 3) if command != "merge" else code in (0, 2), (changes, err)
    assert "Traceback" not in err, (changes, err)


def test_the_probe_pytest_door_values_are_usage_errors(tmp_path):
    """The pytest door: a bad reference, a folder as --benchmark-json, a run id that is a path, an
    unknown filter value: pytest's one-line usage error, before any test runs."""
    import subprocess
    import sys

    from conftest import REPO

    suite = os.path.join(REPO, "suites", "test_text.py")
    cases = [(["--benchbed-reference", "nope"], {}, "unknown runner 'nope'"),
             (["--benchmark-json", str(tmp_path)], {}, "is a folder"),
             ([], {"BENCHBED_RUN_ID": "../../etc"}, "not a plain id"),
             (["--benchbed-task", "nope"], {}, "matches no collected case"),
             (["--benchbed-batch-size", "0"], {}, "matches no collected case"),
             (["--benchbed-results", "/proc/benchbed-nope"], {}, "not writable")]
    for args, env, words in cases:
        p = subprocess.run([sys.executable, "-m", "pytest", suite, "--benchmark", "-m", "quick", "-q",
                            "-p", "no:cacheprovider", *args], capture_output=True, text=True, cwd=tmp_path,
                           env=dict(os.environ, **env), timeout=300)
        text = p.stdout + p.stderr
        assert p.returncode == 4 and words in text and "Traceback" not in text, (args, text[-2000:])
        assert not (tmp_path / "results").exists(), args


# --- issue #30: the new doors, fuzzed in-process (fast): each value is accepted or refused in one line


@given(text=hostile, protocol=st.sampled_from(["openai", "benchbed", "tgi", "nope", ""]))
def test_endpoint_specs_are_accepted_or_one_line(text, protocol):
    from benchbed.endpoints import parse_endpoint
    from benchbed.spec import SpecError

    for spec in (text, f"prod={text}", f"prod=http://{text}", f"prod=http://127.0.0.1:{text}/v1"):
        try:
            parse_endpoint(spec, protocol)
        except SpecError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 1500


@given(text=hostile)
def test_env_specs_thresholds_and_percentages_are_accepted_or_one_line(text):
    from benchbed.envs import parse_env
    from benchbed.regress.thresholds import parse_rule
    from benchbed.spec import SpecError
    from benchbed.validate import percent

    for call in (lambda: parse_env(text), lambda: parse_env(f"old={text}"), lambda: parse_rule(text),
                 lambda: percent(text, "--ratio-ci")):
        try:
            call()
        except SpecError as exc:
            assert len(str(exc)) < 1500


@given(marker=st.one_of(st.binary(max_size=64), hostile.map(str.encode)), key=st.sampled_from(
    ["0123456789abcdef", "not-a-key", "ffffffffffffffff"]), name=st.sampled_from([".benchbed-env.json",
                                                                                 ".benchbed-env-build.json"]))
def test_env_cache_markers_of_any_content_never_crash_list_or_prune(tmp_path_factory, marker, key, name):
    import json

    from benchbed.env_cache import list_envs, prune_envs

    root = tmp_path_factory.mktemp("envs")
    folder = root / key
    folder.mkdir()
    (folder / name).write_bytes(marker)
    (folder / "keep").write_text("x")
    os.environ["BENCHBED_ENV_DIR"] = str(root)
    try:
        list_envs()
        pruned = prune_envs(86400)
        try:
            meta = json.loads(marker)
        except ValueError:
            meta = None
        ours = isinstance(meta, dict) and (meta.get("key") == key if name.endswith("build.json")
                                           else isinstance(meta.get("digest"), str) and isinstance(meta.get("tool"), str))
        if not ours:  # not provably benchbed's: never deleted
            assert (folder / "keep").exists() and key not in pruned.removed
    finally:
        del os.environ["BENCHBED_ENV_DIR"]
