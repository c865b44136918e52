"""benchbed explain (#33): the measured gap taken apart.

Pure attribution on recorded profiles (sums, refusals, noise, operators one runner alone runs),
then proof by injection through the CLI: a plug-in runner spends a known time in a named
function, and explain must name that function first and size it; an identical runner names
nothing; the JSON, the report and bad input."""

from __future__ import annotations

import json
import os
import sys

import pytest

from conftest import REPO, run_cli

from benchbed.explain import explain_pair, explain_records, explanation_lines
from benchbed.execute.explain_pass import gap_runners, profile_runners

SUITE = os.path.join(REPO, "tests", "plugins", "suite_injected_runner.py")


def _profile(stages, functions, ops=(), wall=0.01):
    """A profile as the explain pass records it (schema 13's profile_json)."""
    py_stage = {s: sum(f.values()) for s, f in functions.items()}
    op_stage = {}
    for st, _, _, cpu, _, _ in ops:
        op_stage[st] = op_stage.get(st, 0.0) + cpu
    return json.dumps({"version": 1, "timed_median_s": sum(stages.values()), "stage_clock_s": stages,
                       "python": {"wall_s": wall, "calls": 10, "stage_s": py_stage, "functions": functions},
                       "operators": {"wall_s": wall, "calls": 10, "stage_s": op_stage, "operators": list(ops)}})


def _pair(extra_ms=2.0, ratio_ci=(1.4, 1.6), interfered=False):
    ref_stages = {"preprocess": 0.001, "forward": 0.003, "postprocess": 0.0005, "other": 0.0005}
    ref_f = {"preprocess": {"tok:encode": 0.001}, "forward": {"m:Linear.forward": 0.003},
             "postprocess": {"t:post": 0.0005}, "other": {"r:glue": 0.0005}}
    run_stages = dict(ref_stages, preprocess=0.001 + extra_ms / 1000)
    run_f = dict(ref_f, preprocess={"tok:encode": 0.001, "plug:slow_tokenise": extra_ms / 1000})
    ops_ref = [["forward", "aten::addmm", "[[4, 8]]", 0.003, 0.0, 2.0]]
    ops_run = ops_ref + [["preprocess", "aten::copy_", "[[4]]", 0.0001, 0.0, 1.0]]
    base = {"run_id": "r", "pair_id": "p", "pass_index": 0, "reference": "torch", "task": "text-classification",
            "model": "m", "device": "cpu", "dtype": "fp32", "batch_size": 1, "seq_len": 16, "status": "ok",
            "explain_status": "ok", "interfered": interfered, "interference": "others used 1.2 cores" if interfered else None}
    ref = dict(base, runner="torch", lat_median_s=0.005, profile_json=_profile(ref_stages, ref_f, ops_ref))
    ratio = (0.005 + extra_ms / 1000) / 0.005
    run = dict(base, runner="slow", lat_median_s=0.005 * ratio, ref_ratio=ratio, ref_ratio_low=ratio_ci[0],
               ref_ratio_high=ratio_ci[1], profile_json=_profile(run_stages, run_f, ops_run))
    return run, ref


def test_the_gap_is_accounted_for_exactly_and_the_slow_function_is_named_first():
    run, ref = _pair(extra_ms=2.0)
    e = explain_pair(run, ref)
    assert e.verdict == "explained"
    assert e.gap_s == pytest.approx(0.002)
    assert sum(p.delta_s for p in e.parts) + e.unexplained_s == pytest.approx(e.gap_s, abs=1e-12)
    assert sum(d for _, d in e.stages) == pytest.approx(e.gap_s)  # stages add up to the measured gap
    top = max(e.parts, key=lambda p: abs(p.delta_s))
    assert (top.stage, top.name) == ("preprocess", "plug:slow_tokenise")
    assert top.delta_s == pytest.approx(0.002, rel=0.01)
    only = [o for o in e.operators if o.only_in]
    assert [(o.name, o.only_in) for o in only] == [("aten::copy_", "slow")]
    text = "\n".join(explanation_lines(e))
    assert "plug:slow_tokenise" in text and "unexplained" in text and "only in slow" in text


def test_a_gap_within_noise_names_nothing():
    run, ref = _pair(extra_ms=0.02, ratio_ci=(0.98, 1.03))
    e = explain_pair(run, ref)
    assert e.verdict == "no gap" and e.parts == () and e.operators == ()
    assert "includes 1" in e.reason


def test_a_gap_whose_ci_barely_clears_1_names_nothing_but_one_that_clears_it_does():
    """An A/A twin's 95% CI excludes 1 one time in twenty: a CI that clears 1 by less than
    `CI_CLEARANCE` is noise, named nothing (a twin was "explained" by noise in CI once)."""
    run, ref = _pair(extra_ms=0.125, ratio_ci=(1.004, 1.046))
    e = explain_pair(run, ref)
    assert e.verdict == "no gap" and e.parts == () and "within 1% of it" in e.reason
    run, ref = _pair(extra_ms=0.125, ratio_ci=(1.012, 1.038))
    assert explain_pair(run, ref).verdict == "explained"


def test_records_measured_on_a_busy_machine_are_not_attributed():
    run, ref = _pair(interfered=True)
    e = explain_pair(run, ref)
    assert e.verdict == "refused" and "busy machine" in e.reason and e.parts == ()
    assert any("not attributed" in line for line in explanation_lines(e))


def test_a_record_without_a_profile_says_why_and_how_to_get_one():
    run, ref = _pair()
    ref = dict(ref, profile_json=None, explain_status="failed", explain_message="RuntimeError: profiler died")
    e = explain_pair(run, ref)
    assert e.verdict == "refused" and "profiler died" in e.reason
    assert explain_records([run, ref])[0].verdict == "refused"


def test_which_cells_get_the_pass_is_the_ratio_ci_excluding_one():
    recs = {"torch": {"status": "ok"}, "pipeline": {"status": "ok", "ref_ratio_low": 1.1, "ref_ratio_high": 1.2},
            "onnxruntime": {"status": "ok", "ref_ratio_low": 0.97, "ref_ratio_high": 1.02},
            "broken": {"status": "error", "ref_ratio_low": 2.0, "ref_ratio_high": 3.0}}
    assert gap_runners(recs, "torch") == ["pipeline"]


class _Breaks:
    """A runner whose profiled call fails: the explanation is failed, the timed record kept."""

    sync = staticmethod(lambda: None)

    def call_in_stages(self, stage):
        raise RuntimeError("the profiler's call broke")


def test_a_profiler_that_fails_mid_pass_is_recorded_failed_with_its_reason():
    recs = {"a": {"lat_median_s": 0.001, "measure_s": 1.0, "device": "cpu", "status": "ok", "samples_s": [0.001]}}
    cols = profile_runners({"a": _Breaks()}, recs)["a"]
    assert cols["explain_status"] == "failed" and "the profiler's call broke" in cols["explain_message"]
    assert "profile_json" not in cols


def _explain_json(tmp_path, inject, *extra):
    p = run_cli("explain", "--suite", SUITE, "--min-time", "0.1", "--max-time", "2", "--results",
                str(tmp_path / "r"), "--json", "-", *extra, env={"BENCHBED_TEST_INJECT": inject})
    assert p.returncode == 0, p.stderr[-2000:]
    return {e["runner"]: e for e in json.loads(p.stdout)["explanations"]}


def test_an_injected_delay_is_found_named_and_sized_and_a_twin_names_nothing(tmp_path):
    got = _explain_json(tmp_path, "preprocess=3")
    e = got["torch-injected"]
    if e["verdict"] == "refused":  # holds, or the record says the machine was busy
        assert "busy machine" in e["reason"]
    else:
        top = max(e["parts"], key=lambda p: abs(p["delta_s"]))
        assert top["name"].endswith(":injected_tokenise_delay") and top["stage"] == "preprocess"
        assert top["delta_s"] == pytest.approx(0.003, rel=0.3)
        assert abs(sum(p["delta_s"] for p in e["parts"]) + e["unexplained_s"] - e["gap_s"]) < 1e-9
    twin = got["torch-twin"]
    assert twin["parts"] == [] and twin["verdict"] in ("no gap", "refused")
    # the records carry the profiles; the report has a Why section with the named function
    out = tmp_path / "report.html"
    p = run_cli("report", str(tmp_path / "r"), "-o", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    html = out.read_text()
    assert 'id="why"' in html and ("injected_tokenise_delay" in html or "busy machine" in html)


def test_explain_from_recorded_profiles_does_not_measure_again(tmp_path):
    got = _explain_json(tmp_path, "forward=2", "--runner", "torch,torch-injected")
    import pandas as pd

    df = pd.read_parquet(tmp_path / "r")
    case = df[df.runner == "torch-injected"].case_id.iloc[0]
    p = run_cli("explain", "--case", case, "--from", str(tmp_path / "r"), "--json", "-")
    assert p.returncode == 0, p.stderr[-2000:]
    again = json.loads(p.stdout)["explanations"][0]
    assert again["gap_s"] == got["torch-injected"]["gap_s"]  # the same records, not a new measurement
    assert len({*df.run_id}) == 1 and len(pd.read_parquet(tmp_path / "r")) == len(df)


@pytest.mark.parametrize("args, message", [
    (("--case", "nope", "--from", "RESULTS"), "is not in"),
    (("--case", "abc"), "go together"),
    (("--runner", "torch,no-such-runner"), "no-such-runner"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, message):
    results = tmp_path / "results"
    if "RESULTS" in args:
        run_cli("run", "--quick", "--task", "text-classification", "--batch-size", "1", "--seq-len", "8",
                "--runner", "torch", "--min-time", "0.02", "--max-time", "0.1", "--results", str(results), "-q")
        args = tuple(str(results) if a == "RESULTS" else a for a in args)
    before = sorted(p.name for p in results.rglob("*")) if results.exists() else []
    out = tmp_path / "e.json"
    p = run_cli("explain", "--quick", *args, "--results", str(results), "--json", str(out))
    assert p.returncode == 2, p.stderr[-2000:]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in p.stderr
    assert not out.exists()
    assert (sorted(p.name for p in results.rglob("*")) if results.exists() else []) == before


def test_a_missing_profiler_is_one_line_exit_2(tmp_path):
    code = ("import sys; sys.modules['pyinstrument'] = None\n"  # import pyinstrument now fails, as uninstalled
            "from benchbed.cli import main\n"
            f"sys.exit(main(['run', '--quick', '--explain', '--results', {str(tmp_path / 'r')!r}]))")
    import subprocess

    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.strip().count("\n") == 0 and "pyinstrument" in p.stderr
    assert not (tmp_path / "r").exists()


def test_compare_explain_takes_a_regression_apart_between_two_runs(tmp_path):
    """The same runner measured with and without a 3 ms delay in a named function, in two runs:
    compare flags the regression, and --explain names the function the time went into."""
    for name, inject in (("base", "preprocess=0"), ("cur", "preprocess=3")):
        p = run_cli("explain", "--suite", SUITE, "--runner", "torch,torch-injected", "--min-time", "0.1",
                    "--max-time", "2", "--results", str(tmp_path / name), "-q", env={"BENCHBED_TEST_INJECT": inject})
        assert p.returncode == 0, p.stderr[-2000:]
    md = tmp_path / "summary.md"
    p = run_cli("compare", str(tmp_path / "base"), str(tmp_path / "cur"), "--explain", "--json", "-",
                "--markdown", str(md))
    data = json.loads(p.stdout)
    flagged = [c for c in data["cases"] if c["verdict"] == "regression"]
    if not flagged:  # holds, or the machine was too busy to judge (then compare says so, exit 3)
        assert p.returncode == 3, p.stderr[-2000:]
        return
    assert p.returncode == 1, p.stderr[-2000:]
    why = [e for e in data["explanations"] if e["runner"].startswith("torch-injected")]
    assert why, data["explanations"]
    e = why[0]
    if e["verdict"] == "refused":
        assert "busy machine" in e["reason"]
    else:
        top = max(e["parts"], key=lambda x: abs(x["delta_s"]))
        assert top["name"].endswith(":injected_tokenise_delay"), e["parts"]
        assert "injected_tokenise_delay" in md.read_text()


def test_host_bound_and_device_bound_from_kernel_intervals():
    """The GPU view's arithmetic on recorded intervals (the stand-in where no GPU exists): kernels
    busy 30 of a 100 µs call with two launch gaps are host-bound; back to back, device-bound."""
    from benchbed.measure.device_trace import device_timeline

    host = device_timeline([(10, 20), (40, 50), (80, 90), (200, 300)], [(0, 100)])  # the last is outside
    assert host["busy"] == 30 and host["wall"] == 100 and host["bound"] == "host"
    assert host["gaps"] == 2 and host["gap_median"] == 25 and host["gap_total"] == 50
    dev = device_timeline([(0, 50), (45, 95), (95, 100)], [(0, 100)])  # overlapping kernels count once
    assert dev["busy"] == 100 and dev["bound"] == "device" and dev["gaps"] == 0
    assert device_timeline([], [])["bound"] is None


def test_an_explanation_on_a_gpu_says_which_side_is_host_bound():
    run, ref = _pair()
    prof = json.loads(run["profile_json"])
    prof["operators"]["device"] = {"busy_fraction": 0.3, "bound": "host", "gaps": 12, "gap_median": 2.5e-5}
    e = explain_pair(dict(run, profile_json=json.dumps(prof)), ref)
    assert e.devices == {"slow": prof["operators"]["device"]}
    assert any("device: slow busy 30%" in line and "host-bound" in line for line in explanation_lines(e))
