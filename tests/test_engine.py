"""The engine's records: skipped, error and ok cases are all data, and the matrix goes on."""

import os

import numpy as np
import pytest

from conftest import REPO, holds_or_interfered

from benchbed.spec import Case
from benchbed.store import read_results


def test_unavailable_device_is_a_skipped_record(tiny_session):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = tiny_session.run_case(Case("fill-mask", "synthetic:bert-tiny", device="cuda", seq_len=16))
    assert r.status == "skipped" and "CUDA is not available" in r.record["message"]


def test_too_long_for_the_model_is_skipped(tiny_session):
    r = tiny_session.run_case(Case("fill-mask", "synthetic:bert-tiny", seq_len=1024))
    assert r.status == "skipped" and "512 positions" in r.record["message"]


def test_a_failing_model_is_an_error_record_and_the_run_goes_on(tiny_session, tmp_path):
    bad = tiny_session.run_case(Case("fill-mask", f"hf:{tmp_path / 'missing-model'}", seq_len=16))
    good = tiny_session.run_case(Case("fill-mask", "synthetic:bert-tiny", seq_len=16, batch_size=2))
    assert bad.status == "error" and bad.record["message"]
    assert good.status == "ok"
    df = read_results(tiny_session.store.run_dir)
    assert sorted(df["status"]) == ["error", "ok"]


def test_ok_record_statistics_derive_from_its_raw_samples(tiny_session):
    r = tiny_session.run_case(Case("text-classification", "synthetic:bert-tiny", runner="pipeline", batch_size=2,
                                   seq_len=16))
    rec = r.record
    x = np.asarray(rec["samples_s"])
    assert rec["n_samples"] == len(x) >= 3
    assert rec["lat_median_s"] == pytest.approx(np.median(x))
    assert rec["lat_min_s"] == x.min() and rec["lat_max_s"] == x.max()
    assert rec["lat_median_ci_low_s"] <= rec["lat_median_s"] <= rec["lat_median_ci_high_s"]
    assert rec["items_per_s"] == pytest.approx(2 / np.median(x))
    assert rec["parity_ok"] is True
    assert rec["pre_s"] > 0 and rec["fwd_s"] > 0 and rec["post_s"] > 0
    # the phases are parts of a call: together no more than a slow call (on a quiet machine; a
    # competing process makes the phase pass and the timed pass different machines, and says so)
    case = Case("text-classification", "synthetic:bert-tiny", runner="pipeline", batch_size=2, seq_len=16)

    def measure():
        r = tiny_session.run_case(case).record
        return r, [r]

    def phases_fit(r):
        total = r["pre_s"] + r["fwd_s"] + r["post_s"]
        return None if total < r["lat_max_s"] * 1.5 else f"phases {total:.4f} s > 1.5 x max {r['lat_max_s']:.4f} s"

    if phases_fit(rec) is not None:
        holds_or_interfered(measure, phases_fit)
    assert rec["cpu_rss_method"] in ("vmhwm", "sampler") and rec["cpu_rss_peak_delta_mb"] >= 0


def test_parity_mismatch_is_recorded_loudly(tiny_session, monkeypatch):
    from benchbed.tasks.text_classification import TextClassification

    real = TextClassification.postprocess

    def wrong(self, bundle, encoded, outputs):
        out = real(self, bundle, encoded, outputs)
        return [dict(o, label="WRONG") for o in out]

    monkeypatch.setattr(TextClassification, "postprocess", wrong)
    case = Case("text-classification", "synthetic:bert-tiny", seq_len=16)
    ref, r = tiny_session.run_cell([case, case.pair("pipeline")])
    assert ref.record["parity_ok"] is None and ref.record["parity_detail"].startswith("reference runner")
    assert r.record["parity_ok"] is False
    assert r.record["message"].startswith("PARITY MISMATCH") and "(torch)" in r.record["message"]


def test_each_record_says_what_its_cell_spent_on_each_part(tiny_session):
    """Issue #31: load, build, parity, timing and the runner's passes, each in seconds, within the
    cell's own wall time (what is left is bookkeeping)."""
    results = tiny_session.run([Case("text-classification", "synthetic:bert-tiny", runner=r, batch_size=2, seq_len=16)
                                for r in ("torch", "pipeline")])
    for r in results:
        rec = r.record
        assert rec["status"] == "ok", rec["message"]
        parts = {p: rec[f"cost_{p}_s"] for p in ("load", "build", "parity", "timing", "passes")}
        assert all(v is not None and v >= 0 for v in parts.values()), parts
        assert parts["timing"] >= rec["measure_s"] * 0.99  # the timed window, warm-up included
        assert parts["load"] + parts["parity"] + parts["timing"] + parts["build"] + parts["passes"] <= rec["cell_s"] * 1.01
        # the timed step less its window is the warm-up; the runner's passes one by one (schema 15)
        assert 0 <= rec["cost_warmup_s"] <= parts["timing"] - rec["measure_s"] * 0.99
        own = {p: rec[f"cost_{p}_s"] for p in ("phases", "flops", "memory")}
        assert all(v is not None and v > 0 for v in own.values()), own
        assert sum(own.values()) <= parts["passes"]


def test_what_a_first_pass_paid_is_not_paid_again(tmp_path, fast_rule, monkeypatch):
    """Issue #31: parity's call of a runner counts as its first warm-up call; a later pass of a cell
    in the same process warms up with one call (its shapes ran on this model object already), and a call's FLOPs are counted once per runner and shape, not
    again for another floating precision of the same shapes."""
    from dataclasses import replace

    import benchbed.measure.flops as flops
    from benchbed.engine import EngineConfig, Session

    counted = []
    real = flops.count_flops
    monkeypatch.setattr(flops, "count_flops", lambda fn: counted.append(fn.case.dtype) or real(fn))
    session = Session(str(tmp_path / "results"), EngineConfig(rule=replace(fast_rule, warmup=3), phase_calls=1))
    cases = [Case("text-classification", "synthetic:bert-tiny", runner=r, dtype=d, batch_size=3, seq_len=12)
             for d in ("fp32", "bf16") for r in ("torch", "pipeline")]
    recs = [r.record for r in session.run(cases, passes=[0, 1])]
    session.close()
    assert all(r["status"] == "ok" for r in recs), [r["message"] for r in recs]
    # parity's call is the first warm-up call: a first pass makes the other two, a later one one
    assert sorted((r["pass_index"], r["warmup"]) for r in recs) == [(0, 2)] * 4 + [(1, 1)] * 4
    from benchbed.execute.cell import warm_rule

    rule = replace(fast_rule, warmup=3)  # where parity did not call a runner, its warm-up is whole
    assert [warm_rule(rule, False).warmup, warm_rule(rule, False, parity_called=True).warmup,
            warm_rule(rule, True, parity_called=True).warmup, warm_rule(replace(rule, warmup=1), False, True).warmup] == [3, 2, 1, 1]
    assert counted == ["fp32", "fp32"]  # torch and pipeline, once each
    first = {(r["dtype"], r["runner"]): r["flops_per_call"] for r in recs if r["pass_index"] == 0}
    assert first[("fp32", "torch")] > 0
    assert first[("bf16", "torch")] == first[("fp32", "torch")]
    assert first[("bf16", "pipeline")] == first[("fp32", "pipeline")]
    # scripts/cost_share.py reads where the cells' time went, a cell counted once per pass
    import importlib.util

    spec = importlib.util.spec_from_file_location("cost_share", os.path.join(REPO, "scripts", "cost_share.py"))
    cost_share = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cost_share)
    by_pass, share = cost_share.shares(str(tmp_path / "results"))
    assert list(by_pass.index) == [0, 1] and 0 < share < 1
    for _, row in by_pass.iterrows():
        parts = row["windows"] + row["warmup"] + row["parity"] + row["loading"] + row["passes"]
        assert 0 < parts <= row["cells"] * 1.01, row
        assert row["phases"] + row["flops"] + row["memory"] <= row["passes"]
    assert by_pass.loc[0, "memory"] > 0 and by_pass.loc[1, "memory"] == 0  # later passes only time
