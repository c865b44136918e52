"""Regression tracking on recorded and synthetic histories: compare, history, thresholds, outputs."""

import datetime as dt
import json
import re

import numpy as np
import pytest

from benchbed.record import empty_record, to_table
from benchbed.regress import CompareSettings, Thresholds, compare_runs, parse_rule
from benchbed.regress.history import find_change_points
from benchbed.regress.output import comparison_dict, comparison_markdown, history_dict, history_markdown
from benchbed.spec import Case, SpecError
from benchbed.store import LocalStore

from conftest import run_cli


def _rec(run, day, samples, task="fill-mask", batch_size=1, runner="torch", **env):
    case = Case(task, "synthetic:bert-tiny", runner=runner, batch_size=batch_size, seq_len=16)
    rec = empty_record()
    rec.update(run_id=run, case_id=case.case_id, pair_id=case.pair_id, task=task, model="synthetic:bert-tiny",
               runner=runner, device="cpu", dtype="fp32", batch_size=batch_size, seq_len=16, status="ok",
               started_at=dt.datetime(2026, 9, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=day),
               samples_s=list(map(float, samples)), n_samples=len(samples), lat_median_s=float(np.median(samples)),
               env_cpu="cpu-x", env_torch="2.13.0", env_transformers="5.24.0")
    rec.update(env)
    return rec


def _history(levels_by_case, n_samples=30, noise=0.01, seed=0, env_at=None):
    """Records of len(levels) nightly runs; levels_by_case maps batch size -> per-run level multipliers."""
    rng = np.random.default_rng(seed)
    recs = []
    n_runs = len(next(iter(levels_by_case.values())))
    for day in range(n_runs):
        env = {"env_torch": "2.14.0"} if env_at is not None and day >= env_at else {}
        for bs, levels in levels_by_case.items():
            x = 1e-3 * bs * levels[day] * (1 + noise * rng.standard_normal(n_samples))
            recs.append(_rec(f"night{day:02d}", day, x, batch_size=bs, **env))
    return to_table(recs).to_pandas()


def test_step_change_is_found_at_the_right_run_and_a_spike_is_not_confirmed():
    flat = [1.0] * 14
    step = [1.0] * 9 + [1.12] * 5          # +12% from run 9 on
    spike = [1.0] * 6 + [1.5] + [1.0] * 7   # one noisy night
    df = _history({1: flat, 2: step, 4: spike})
    points, envs, runs = find_change_points(df)
    assert envs == {}
    assert [(p.label.split()[-2], p.index, p.kind) for p in points] == [("b2", 9, "regression")]
    assert points[0].change == pytest.approx(0.12, abs=0.01)
    assert points[0].run_id == "night09"


def test_improvement_and_two_run_persistence():
    late = [1.0] * 10 + [0.8] * 2           # confirmed by exactly two runs
    too_late = [1.0] * 11 + [1.3]           # only tonight: not yet confirmed
    df = _history({1: late, 2: too_late})
    points, _, _ = find_change_points(df)
    assert [(p.label.split()[-2], p.index, p.kind) for p in points] == [("b1", 10, "improvement")]


def test_environment_change_is_named():
    df = _history({1: [1.0] * 6 + [1.2] * 6}, env_at=6)
    points, envs, runs = find_change_points(df)
    assert envs == {6: "env_torch: 2.13.0 -> 2.14.0"}
    assert points[0].index == 6 and points[0].env_change == "env_torch: 2.13.0 -> 2.14.0"


def test_small_shift_below_threshold_is_not_a_change_point():
    df = _history({1: [1.0] * 8 + [1.03] * 8})
    assert find_change_points(df)[0] == []


def test_thresholds_per_metric_and_case_pattern():
    t = Thresholds.parse(["5%", "fill-mask*=8%", "p99:20%", "median:* b4 *=0.02"])
    assert t.for_case("median", "text-classification m torch cpu fp32 b1 s16") == 0.05
    assert t.for_case("median", "fill-mask m torch cpu fp32 b1 s16") == 0.08
    assert t.for_case("p99", "fill-mask m torch cpu fp32 b1 s16") == 0.20
    assert t.for_case("median", "fill-mask m torch cpu fp32 b4 s16") == 0.02
    for bad in ("five", "p42:5%", "x=-1", "0%"):
        with pytest.raises(SpecError):
            parse_rule(bad)


def _two_runs(change, batch=1, seed=1, **env):
    rng = np.random.default_rng(seed)
    base = to_table([_rec("a", 0, 1e-3 * (1 + 0.01 * rng.standard_normal(50)), batch_size=batch)]).to_pandas()
    cur = to_table([_rec("b", 1, 1e-3 * (1 + change) * (1 + 0.01 * rng.standard_normal(50)), batch_size=batch,
                         **env)]).to_pandas()
    return base, cur


def test_compare_verdicts_and_threshold_override():
    base, cur = _two_runs(0.10)
    c = compare_runs(base, cur)
    assert c.regressions == 1 and c.cases.iloc[0]["change"] == pytest.approx(0.10, abs=0.01)
    c = compare_runs(base, cur, CompareSettings(thresholds=Thresholds.parse(["fill-mask*=15%"])))
    assert c.regressions == 0 and c.cases.iloc[0]["verdict"] == "unchanged"


def test_compare_refuses_a_changed_environment_unless_allowed():
    base, cur = _two_runs(0.10, env_torch="2.14.0")
    c = compare_runs(base, cur)
    assert not c.compared and c.env_changes == ["env_torch: 2.13.0 -> 2.14.0"] and c.regressions == 0
    c = compare_runs(base, cur, CompareSettings(allow_env_change=True))
    assert c.compared and c.regressions == 1 and c.env_changes == ["env_torch: 2.13.0 -> 2.14.0"]


def test_markdown_shows_the_same_numbers_as_json():
    base, cur = _two_runs(0.10)
    d = comparison_dict(compare_runs(base, cur))
    d = json.loads(json.dumps(d, default=str))
    md = comparison_markdown(d)
    row = d["cases"][0]
    line = next(l for l in md.splitlines() if row["label"] in l)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == f"{row['base_s'] * 1e3:.3g}" and cells[2] == f"{row['cur_s'] * 1e3:.3g}"
    assert cells[3] == f"{100 * row['change']:+.1f}%"
    assert cells[4] == f"[{100 * row['change_ci_low']:+.1f}%, {100 * row['change_ci_high']:+.1f}%]"
    assert cells[5] == f"{row['p_value']:.3g}" and cells[7] == f"{100 * row['mde']:.1f}%" and "regression" in cells[8]
    hd = history_dict([], [], {}, ["a", "b"], 3)
    assert history_markdown(hd).startswith("## benchbed history")


def _write(root, df):
    for run, g in df.groupby("run_id"):
        store = LocalStore(root, run)
        for rec in g.to_dict("records"):
            store.write({k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()})


def test_cli_exit_codes_and_outputs(tmp_path):
    base, cur = _two_runs(0.10)
    _write(tmp_path / "a", base)
    _write(tmp_path / "b", cur)
    md, js = tmp_path / "summary.md", tmp_path / "out.json"
    p = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--markdown", str(md), "--json", str(js))
    assert p.returncode == 1, p.stderr
    assert "REGRESSION" in p.stdout and "1 regressions" in p.stdout
    assert json.loads(js.read_text())["summary"]["regressions"] == 1
    assert md.read_text().startswith("## benchbed compare")
    p = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "a"))
    assert p.returncode == 0 and "0 regressions" in p.stdout
    # one folder: newest run vs the run before
    _write(tmp_path / "both", base)
    _write(tmp_path / "both", cur)
    p = run_cli("compare", str(tmp_path / "both"), "--json", "-")
    assert p.returncode == 1 and json.loads(p.stdout)["baseline_runs"] == ["a"]
    for args, msg in ((["/nope"], "does not exist"), ([str(tmp_path / "a"), "--threshold", "lots"], "threshold"),
                      ([str(tmp_path / "a")], "compare needs two")):
        p = run_cli("compare", *args)
        assert p.returncode == 2 and msg in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_cli_history_gates_on_new_regressions_only(tmp_path):
    new = _history({1: [1.0] * 10 + [1.2] * 2})
    old = _history({1: [1.0] * 4 + [1.2] * 8})
    _write(tmp_path / "new", new)
    _write(tmp_path / "old", old)
    p = run_cli("history", str(tmp_path / "new"), "--json", str(tmp_path / "h.json"))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "regression" in p.stdout and "at run 10" in p.stdout
    assert len(json.loads((tmp_path / "h.json").read_text())["new_regressions"]) == 1
    p = run_cli("history", str(tmp_path / "old"))
    assert p.returncode == 0 and "1 confirmed change points, 0 new regressions" in p.stdout


def test_merge_joins_shards_into_one_run(tmp_path):
    df = _history({1: [1.0, 1.0], 2: [1.0, 1.0]})
    _write(tmp_path / "shard1", df[df["batch_size"] == 1].assign(run_id="s1"))
    _write(tmp_path / "shard2", df[df["batch_size"] == 2].assign(run_id="s2"))
    p = run_cli("merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "-o", str(tmp_path / "merged"),
                "--run-id", "nightly-1")
    assert p.returncode == 0, p.stderr
    import pandas as pd

    merged = pd.read_parquet(tmp_path / "merged")
    assert set(merged["run_id"]) == {"nightly-1"} and len(merged) == 2
    files = list((tmp_path / "merged").rglob("*.parquet"))
    assert len(files) == 1 and re.match(r"run-nightly-1-", files[0].name)


def test_uri_store_round_trip(tmp_path):
    from benchbed.store import FsStore, read_results

    uri = f"file://{tmp_path}/remote"
    store = FsStore(uri, "r1")
    rec = _rec("r1", 0, [0.001, 0.002])
    store.write(rec)
    df = read_results(uri)
    assert list(df["case_id"]) == [rec["case_id"]] and list(df["samples_s"].iloc[0]) == [0.001, 0.002]


def _host_runs(code_change, host_change, seed=2):
    """Baseline and current runs whose samples move by the code's change times the host's, each
    record carrying its host yardstick's median (which moves by the host's change only)."""
    rng = np.random.default_rng(seed)

    def rec(run, day, factor, host):
        r = _rec(run, day, 1e-3 * factor * (1 + 0.01 * rng.standard_normal(50)))
        r.update(host_median_s=6e-4 * host, host_samples_s=[6e-4 * host] * 20, host_yardstick=1)
        return r

    base = to_table([rec("a", 0, 1.0, 1.0)]).to_pandas()
    cur = to_table([rec("b", 1, (1 + code_change) * (1 + host_change), 1 + host_change)]).to_pandas()
    return base, cur


def test_normalize_host_cancels_a_slower_machine_and_keeps_a_slower_code():
    base, cur = _host_runs(code_change=0.0, host_change=0.20)  # the whole machine ran 20% slower
    assert compare_runs(base, cur).regressions == 1  # raw latency cannot tell
    host = compare_runs(base, cur, CompareSettings(normalize="host"))
    assert host.regressions == 0 and host.cases.iloc[0]["verdict"] == "unchanged"
    assert host.cases.iloc[0]["change"] == pytest.approx(0.0, abs=0.01)
    assert host.cases.iloc[0]["cur_s"] == pytest.approx(1.2e-3, rel=0.02)  # reported in raw seconds
    base, cur = _host_runs(code_change=0.15, host_change=0.0)  # the code got slower, the host did not
    host = compare_runs(base, cur, CompareSettings(normalize="host"))
    assert host.regressions == 1 and host.cases.iloc[0]["change"] == pytest.approx(0.15, abs=0.02)
    assert "normalised by the host yardstick" in comparison_markdown(comparison_dict(host))


def test_normalize_host_without_a_yardstick_is_unjudged_not_passed():
    base, cur = _two_runs(0.0)
    c = compare_runs(base, cur, CompareSettings(normalize="host"))
    assert c.unjudged == 1 and c.judged == 0
    assert "no host yardstick" in c.cases.iloc[0]["reason"]
    df = _history({1: [1.0] * 6})
    from benchbed.regress.history import HistorySettings, unjudged_cases

    assert find_change_points(df, HistorySettings(normalize="host"))[0] == []
    assert all("no host yardstick" in u["reason"] for u in unjudged_cases(df, 2, "host"))


def test_history_normalized_by_host_ignores_a_host_switch():
    """Nights 4-7 ran on a host 15% slower (yardstick and cases alike): raw history confirms a
    regression there, host-normalised history does not."""
    rng = np.random.default_rng(5)
    recs = []
    for day in range(8):
        host = 1.15 if day >= 4 else 1.0
        r = _rec(f"night{day:02d}", day, 1e-3 * host * (1 + 0.01 * rng.standard_normal(30)))
        r.update(host_median_s=6e-4 * host * (1 + 0.003 * rng.standard_normal()), host_samples_s=[6e-4 * host] * 10,
                 host_yardstick=1)
        recs.append(r)
    df = to_table(recs).to_pandas()
    from benchbed.regress.history import HistorySettings

    assert [p.kind for p in find_change_points(df)[0]] == ["regression"]
    assert find_change_points(df, HistorySettings(normalize="host"))[0] == []
