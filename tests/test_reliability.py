"""What benchbed promises under bad input and faults (docs/reliability.md): bad input is one line,
exit 2, nothing written; nothing finished is lost; nothing is written outside the results folder;
the regression gate fails closed; output is safe where it lands."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchbed.cli import main
from benchbed.record import empty_record, to_table
from benchbed.spec import Case
from benchbed.store import LocalStore, compact_run, read_results

from conftest import REPO, run_cli


def _rec(run, day, samples, model="synthetic:bert-tiny", batch_size=1, status="ok", **extra):
    case = Case("fill-mask", model, runner="torch", batch_size=batch_size, seq_len=16)
    rec = empty_record()
    rec.update(run_id=run, case_id=case.case_id, pair_id=case.pair_id, task="fill-mask", model=model,
               runner="torch", device="cpu", dtype="fp32", batch_size=batch_size, seq_len=16, status=status,
               pass_index=0, started_at=dt.datetime(2026, 9, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=day),
               samples_s=None if samples is None else list(map(float, samples)),
               n_samples=None if samples is None else len(samples),
               lat_median_s=float(np.median(samples)) if samples is not None and len(samples) else None,
               env_cpu="cpu-x", env_torch="2.13.0", env_transformers="5.24.0")
    rec.update(extra)
    return rec


def _write(root, recs):
    for r in recs:
        LocalStore(root, r["run_id"]).write(r)


def _steady(level=1e-3, seed=0, n=30):
    return level * (1 + 0.01 * np.random.default_rng(seed).standard_normal(n))


@pytest.fixture
def history(tmp_path):
    """A results folder with three quiet nightly runs of two cases."""
    root = tmp_path / "hist"
    _write(root, [_rec(f"night{d}", d, _steady(seed=d * 2 + b), batch_size=b) for d in range(3) for b in (1, 4)])
    return root


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# -- bad input: one line, exit 2, nothing written -----------------------------------------------------

BAD_RUN = [
    ["--task", ""], ["--model", ""], ["--batch-size", ""], ["--dtype", ""], ["--runner", ""], ["--device", ""],
    ["--seq-len", ""], ["--attn-impl", ""], ["--compiled", ""], ["--task", "fill-mask,"], ["--task", ",,"],
    ["--batch-size", "1,,4"], ["--batch-size", "x"], ["--min-time", "nan"], ["--min-time", "inf"],
    ["--min-time", "-1"], ["--max-time", "0"], ["--max-time", "nan"], ["--ci-width", "nan"],
    ["--memory-cap", "nan"], ["--memory-cap", "inf"], ["--memory-cap", "0"], ["--memory-cap", "-5"],
    ["--case-timeout", "nan"], ["--case-timeout", "0"], ["--case-timeout", "5", "--no-isolate"],
    ["--passes", "0"], ["--passes", "two"], ["--threads", "0"], ["--warmup", "-1"], ["--min-samples", "0"],
    ["--seed", "-3"], ["--new-tokens", "0"], ["--inject-slowdown", "nan"], ["--inject-slowdown", "11"],
    ["--run-id", "../../x"], ["--run-id", ".."], ["--run-id", "/abs/x"], ["--run-id", "a/b"], ["--run-id", ""],
    ["--run-id", ".hidden"], ["--run-id", "x" * 200], ["--model", "hf:/no/such/folder"],
    ["--model", "hf:./missing-dir"], ["--shard", "0/2"], ["--int8-method", "fast"],
]


@pytest.mark.parametrize("args", BAD_RUN, ids=lambda a: " ".join(a)[:40])
def test_bad_run_input(tmp_path, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    assert _exit_code(["run", "--quick", "--results", "res", *args]) == 2
    _assert_one_line(capsys)
    assert _tree(tmp_path) == before


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own exit, after its one line
        return exc.code


def _assert_one_line(capsys):
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error" in lines[0]
    assert out == ""


def test_bad_env_run_id_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCHBED_RUN_ID", "../escape")
    assert main(["run", "--quick", "--results", "res"]) == 2
    _assert_one_line(capsys)
    assert _tree(tmp_path) == []


def test_hf_folder_without_weights_is_one_line_up_front(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    assert main(["run", "--quick", "--model", f"hf:{tmp_path / 'm'}", "--results", "res"]) == 2
    _assert_one_line(capsys)
    (tmp_path / "m" / "config.json").write_text("{}")
    assert main(["run", "--quick", "--model", f"hf:{tmp_path / 'm'}", "--results", "res"]) == 2
    out, err = capsys.readouterr()
    assert "holds no weights" in err and not (tmp_path / "res").exists()


BAD_OTHER = [
    ["report", "nowhere"], ["report", "hist", "-o", "."], ["report", "hist", "-o", "sub/"],
    ["report", "hist", "--baseline", "hist"], ["report", "hist", "-o", ""],
    ["compare", "nowhere"], ["compare", "hist", "--json", "."], ["compare", "hist", "--markdown", "."],
    ["compare", "hist", "--alpha", "nan"], ["compare", "hist", "--alpha", "2"], ["compare", "hist", "--baseline-runs", "0"],
    ["compare", "hist", "--threshold", "abc"], ["compare", "hist", "--metric", "p50"], ["compare", "hist", "nowhere"],
    ["history", "nowhere"], ["history", "hist", "--window", "0"], ["history", "hist", "--window", "x"],
    ["history", "hist", "--json", "."], ["history", "hist", "--alpha", "inf"],
    ["merge", "hist", "-o", "out", "--run-id", "../../x"], ["merge", "hist", "-o", "out", "--run-id", ".."],
    ["merge", "hist", "-o", "out", "--run-id", "/tmp/x"], ["merge", "nowhere", "-o", "out"], ["merge", "hist"],
    ["list", "extra"], ["frobnicate"],
]


@pytest.mark.parametrize("args", BAD_OTHER, ids=lambda a: " ".join(a)[:40])
def test_bad_input_to_every_other_command(tmp_path, monkeypatch, capsys, history, args):
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    assert _exit_code(args) == 2
    _assert_one_line(capsys)
    assert _tree(tmp_path) == before


def test_at_least_forty_bad_inputs_are_tried():
    assert len(BAD_RUN) + len(BAD_OTHER) >= 40


def test_pytest_door_refuses_an_empty_filter(tmp_path):
    suite = tmp_path / "test_s.py"
    suite.write_text("from benchbed.pytest_plugin import parametrize\nfrom benchbed.defaults import QUICK_MATRIX\n"
                     "@parametrize(QUICK_MATRIX)\ndef test_x(benchbed, case):\n    benchbed.run(case)\n")
    p = subprocess.run([sys.executable, "-m", "pytest", str(suite), "--benchmark", "--benchbed-task", "",
                        "--benchbed-results", str(tmp_path / "res"), "-p", "no:cacheprovider"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 4 and "empty value" in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / "res").exists()


# -- nothing written outside the results folder ------------------------------------------------------

@pytest.mark.parametrize("bad", ["..", "../x", "/abs", "a/b", ".", "", "x/../..", "..\\x"])
def test_every_place_an_id_becomes_a_path_refuses_traversal(tmp_path, bad):
    from benchbed.engine import EngineConfig, Session
    from benchbed.spec import SpecError
    from benchbed.store import FsStore, merge_runs

    with pytest.raises(SpecError):
        LocalStore(tmp_path / "r", bad)
    with pytest.raises(SpecError):
        FsStore(f"file://{tmp_path}/r", bad)
    with pytest.raises(ValueError):
        Session(str(tmp_path / "r"), EngineConfig(), run_id=bad or "..")
    with pytest.raises(SpecError):
        merge_runs(to_table([_rec("a", 0, [1e-3])]), tmp_path / "r", bad)
    assert not (tmp_path / "r").exists()


def test_compaction_never_touches_files_that_are_not_its_parts(tmp_path):
    foreign = tmp_path / "someone-elses.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), foreign)
    from benchbed.spec import SpecError

    with pytest.raises(SpecError):
        compact_run(tmp_path / "results" / "..")
    run = tmp_path / "results" / "run1"
    LocalStore(tmp_path / "results", "run1").write(_rec("run1", 0, [1e-3]))
    pq.write_table(pa.table({"y": [3]}), run / "notes.parquet")
    compact_run(run)
    assert foreign.exists() and (run / "notes.parquet").exists()
    assert len(read_results(run, warn=False)) == 1


# -- merge keeps every record ------------------------------------------------------------------------

def test_merge_of_multi_pass_multi_shard_runs_keeps_every_record_byte_for_byte(tmp_path):
    env = {"BENCHBED_RUN_ID": "nightly-1"}
    shards = tmp_path / "shards"
    for shard in ("1/2", "2/2"):
        p = run_cli("run", "--quick", "--task", "text-classification", "--batch-size", "1,4", "--seq-len", "16",
                    "--min-time", "0.02", "--max-time", "0.2", "--passes", "2", "--shard", shard,
                    "--results", str(shards), "-q", env=env)
        assert p.returncode == 0, p.stderr[-2000:]
    before = read_results(shards)
    assert len(before) == 8  # 2 cells x 2 runners x 2 passes
    p = run_cli("merge", str(shards), "-o", str(tmp_path / "merged"), "--run-id", "merged-1")
    assert p.returncode == 0 and "merged 8 records" in p.stdout, p.stderr
    after = read_results(tmp_path / "merged")
    assert len(after) == 8 and set(after["run_id"]) == {"merged-1"}
    key = ["case_id", "pass_index"]
    a = pa.Table.from_pandas(before.drop(columns="run_id").sort_values(key).reset_index(drop=True)).to_pylist()
    b = pa.Table.from_pandas(after.drop(columns="run_id").sort_values(key).reset_index(drop=True)).to_pylist()
    assert a == b
    # the same shard given twice is one shard, not two
    p = run_cli("merge", str(shards), str(shards), "-o", str(tmp_path / "twice"))
    assert p.returncode == 0 and "merged 8 records" in p.stdout


# -- readers never lose a compacting writer's records ------------------------------------------------

def test_readers_racing_compaction_always_see_every_record(tmp_path):
    n, tries = 40, 16
    for t in range(tries):
        run = tmp_path / "r" / f"run{t}"
        store = LocalStore(tmp_path / "r", f"run{t}")
        for i in range(n):
            store.write(_rec(f"run{t}", 0, [1e-3 + i * 1e-6], batch_size=i + 1))
        child = subprocess.Popen([sys.executable, "-c", "from benchbed.store import compact_run; print('go', flush=True); "
                                  f"compact_run({str(run)!r})"], cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "go"  # imports done: compaction starts now
        seen = []
        while child.poll() is None:
            seen.append(len(read_results(run, warn=False)))
        seen.append(len(read_results(run, warn=False)))
        assert child.wait() == 0
        assert set(seen) == {n}, seen
        assert [f.name.startswith("run-") for f in run.iterdir()] == [True]


# -- the gate fails closed ---------------------------------------------------------------------------

@pytest.mark.parametrize("samples, why", [
    ([float("nan")] * 30, "NaN or infinite"), ([float("inf")] * 30, "NaN or infinite"),
    ([], "no samples"), (None, "no samples"), (list(_steady()[:29]) + [float("nan")], "1 of 30"),
])
def test_compare_does_not_pass_what_it_cannot_judge(tmp_path, history, samples, why):
    cur = tmp_path / "cur"
    _write(cur, [_rec("tonight", 9, samples, batch_size=1), _rec("tonight", 9, _steady(seed=99), batch_size=4)])
    p = run_cli("compare", str(history), str(cur), "--markdown", str(tmp_path / "s.md"))
    assert p.returncode == 3, p.stdout + p.stderr
    assert "NOT JUDGED" in p.stdout and why in p.stdout
    assert "Not judged" in (tmp_path / "s.md").read_text()


def test_compare_with_no_case_in_common_or_only_failed_cases_is_not_a_pass(tmp_path, history):
    other = tmp_path / "other"
    _write(other, [_rec("x", 9, _steady(), model="synthetic:gpt2-tiny")])
    p = run_cli("compare", str(history), str(other))
    assert p.returncode == 3 and "NO CASE IN COMMON" in p.stdout
    failed = tmp_path / "failed"
    _write(failed, [_rec("y", 9, None, status="error", message="boom")])
    p = run_cli("compare", str(history), str(failed))
    assert p.returncode == 3 and "no finished record (status error)" in p.stdout


def test_compare_of_a_clean_pair_passes_and_a_slowdown_fails(tmp_path, history):
    ok, slow = tmp_path / "ok", tmp_path / "slow"
    _write(ok, [_rec("t", 9, _steady(seed=50), batch_size=b) for b in (1, 4)])
    _write(slow, [_rec("t", 9, 1.3 * _steady(seed=50), batch_size=b) for b in (1, 4)])
    assert run_cli("compare", str(history), str(ok)).returncode == 0
    assert run_cli("compare", str(history), str(slow)).returncode == 1


def test_history_does_not_pass_a_broken_or_partial_newest_run(tmp_path, history):
    _write(history, [_rec("night9", 9, [float("inf")] * 30, batch_size=1)])  # batch 4 missing: killed half-way
    p = run_cli("history", str(history), "--json", str(tmp_path / "h.json"))
    assert p.returncode == 3, p.stdout + p.stderr
    assert "NaN or infinite" in p.stdout and "missing from the newest run" in p.stdout
    assert "unjudged" in (tmp_path / "h.json").read_text()


def test_an_alias_and_its_canonical_name_are_one_case_across_schema_versions(tmp_path):
    """A v3 record written as `bert-tiny` (its id hashed from the alias) compares with a new one."""
    old = _rec("old", 0, _steady(), model="bert-tiny", schema_version=3)
    assert old["case_id"] == Case("fill-mask", "bert-tiny", batch_size=1, seq_len=16).case_id
    _write(tmp_path / "base", [old])
    new_case = Case("fill-mask", "bert-tiny", batch_size=1, seq_len=16).canonical()
    assert new_case.model == "synthetic:bert-tiny"
    _write(tmp_path / "cur", [_rec("new", 1, _steady(seed=3))])
    df = read_results(tmp_path / "base")
    assert df["model"].iloc[0] == "synthetic:bert-tiny" and df["case_id"].iloc[0] == new_case.case_id
    p = run_cli("compare", str(tmp_path / "base"), str(tmp_path / "cur"))
    assert p.returncode == 0 and "1 cases compared" in p.stdout, p.stdout


# -- readers survive bad files; reports survive bad numbers and huge strings -------------------------

def test_a_wrongly_typed_file_is_skipped_with_a_warning_and_the_rest_is_read(tmp_path, history):
    pq.write_table(pa.table({"schema_version": [3], "case_id": ["x"], "run_id": ["bad"],
                             "lat_median_s": ["fast"], "samples_s": [["a"]]}), history / "bad.parquet")
    with pytest.warns(UserWarning, match="bad.parquet"):
        df = read_results(history)
    assert len(df) == 6
    for cmd in (["history", str(history)], ["merge", str(history), "-o", str(tmp_path / "m")],
                ["report", str(history), "-o", str(tmp_path / "r.html")]):
        p = run_cli(*cmd)
        # three nights are too few for history to confirm anything (2 runs on each side of a
        # change): not judged, exit 3, whatever the bad file; the rest is read all the same
        code = 3 if cmd[0] == "history" else 0
        assert p.returncode == code and "bad.parquet" in p.stderr, (cmd, p.stderr[-2000:])
        if cmd[0] == "history":
            assert "3 runs, 2 cases" in p.stdout and "so it needs 4 or more" in p.stdout, p.stdout


def test_report_survives_nan_inf_empty_samples_and_a_huge_model_name(tmp_path, history):
    huge = "m" * 200_000
    _write(history, [_rec("night9", 9, [float("nan")] * 5, batch_size=1),
                     _rec("night9", 9, [float("inf")] * 5, batch_size=4),
                     _rec("night9", 9, [], batch_size=8),
                     _rec("night9", 9, _steady(), batch_size=16, model=f"hf:{huge}")])
    out = tmp_path / "r.html"
    t0 = time.perf_counter()
    p = run_cli("report", str(history), "-o", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    page = out.read_text()
    assert huge not in page and "unusable samples" in page
    assert time.perf_counter() - t0 < 120


# -- output is safe where it lands -------------------------------------------------------------------

HOSTILE = "evil|`x`<script>alert(1)</script>\x1b[31mred\x1b]0;title\x07\r\n**b**"


def test_markdown_and_console_output_are_escaped(tmp_path, history):
    from benchbed.display import md_code, md_text

    base, cur = tmp_path / "base", tmp_path / "cur"
    _write(base, [_rec(f"b{d}", d, _steady(seed=d), model=f"hf:{HOSTILE}") for d in range(3)])
    _write(cur, [_rec("c", 9, 1.5 * _steady(seed=9), model=f"hf:{HOSTILE}")])
    md = tmp_path / "s.md"
    p = run_cli("compare", str(base), str(cur), "--markdown", str(md))
    assert p.returncode == 1
    assert "\x1b" not in p.stdout and "\r" not in p.stdout and "\x07" not in p.stdout
    text = md.read_text()
    outside_code = re.sub(r"(`+).*?\1", "", text)  # HTML inside a code span is shown, never rendered
    assert "<" not in outside_code and "\x1b" not in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| ``"))
    assert len(re.findall(r"(?<!\\)\|", row)) == 10  # 9 cells: no pipe from the name splits the row
    assert md_text("<b>|x") == "&lt;b&gt;\\|x" and md_code("a`b") == "``a`b``"


def test_a_fleet_of_mixed_hardware_compares_each_case_only_with_itself_on_the_same_kind_of_host(tmp_path):
    """A cluster run can hold the same case from two kinds of host: a fast host in the baseline must
    not make the slow host's current record a regression (or hide one)."""
    from benchbed.regress import CompareSettings, compare_runs

    def recs(run, day, scale):
        return [_rec(run, day, scale * _steady(level=1e-3, seed=day), env_cpu="fast-cpu"),
                _rec(run, day, scale * _steady(level=3e-3, seed=day + 50), env_cpu="slow-cpu")]

    base = to_table([r for d in range(3) for r in recs(f"b{d}", d, 1.0)]).to_pandas()
    same = to_table(recs("c", 9, 1.0)).to_pandas()
    c = compare_runs(base, same, CompareSettings())
    assert c.judged == 2 and c.regressions == 0
    assert sorted(c.cases["label"].str.split(" @ ").str[1]) == ["fast-cpu", "slow-cpu"]
    slower = to_table([recs("c", 9, 1.0)[0], _rec("c", 9, 1.3 * _steady(3e-3, 59), env_cpu="slow-cpu")]).to_pandas()
    c = compare_runs(base, slower, CompareSettings())
    assert c.regressions == 1 and c.cases.iloc[0]["label"].endswith("@ slow-cpu")
