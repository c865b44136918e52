"""Precisions (int8 through torchao, bf16 on the CPU), the attn_impl and compiled axes, FLOPs and
the matmul peak, on the tiny preset: the real engine, real torchao, real torch.compile."""

from __future__ import annotations

import pytest

from benchbed.execute.records import base_record
from benchbed.spec import Case, Matrix, SpecError
from conftest import run_cli


def _case(**kw):
    base = dict(task="text-classification", model="bert-tiny", batch_size=4, seq_len=32)
    base.update(kw)
    return Case(**base)


def test_case_ids_of_existing_cases_do_not_change():
    # The new axes stay out of the id at their defaults, so history recorded before them still matches.
    assert Case("text-classification", "minilm").case_id == "dc1f0118b7ce3142"
    assert _case(attn_impl="eager").case_id != _case().case_id
    assert _case(compiled=True).case_id != _case().case_id


def test_variant_axes_expand_and_validate():
    m = Matrix(task=("fill-mask",), model=("bert-tiny",), attn_impl=("default", "eager"), compiled=("false", "true"))
    cases = m.validate().cases()
    assert {(c.attn_impl, c.compiled) for c in cases} == {(None, False), (None, True), ("eager", False), ("eager", True)}
    with pytest.raises(SpecError, match=r"unknown attn_impl 'fast' \(valid: default, sdpa, eager"):
        Matrix(task=("fill-mask",), model=("bert-tiny",), attn_impl=("fast",)).validate()
    with pytest.raises(SpecError, match="compiled must be true or false"):
        Matrix(task=("fill-mask",), model=("bert-tiny",), compiled=("maybe",)).validate()


@pytest.mark.parametrize("args, expected", [
    (["--attn-impl", "turbo"], "unknown attn_impl 'turbo' (valid: default, sdpa, eager, flash_attention_2"),
    (["--compiled", "sometimes"], "compiled must be true or false, got 'sometimes'"),
    (["--memory-cap", "0"], "--memory-cap must be a positive number, got '0'"),
])
def test_bad_variant_options_are_one_line_exit_2(tmp_path, args, expected):
    p = run_cli("run", "--quick", "--results", str(tmp_path / "r"), *args)
    assert p.returncode == 2 and expected in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "r").exists()


def test_int8_quantises_with_torchao_and_both_paths_agree(tiny_session):
    import torch

    results = [tiny_session.run_case(_case(runner=r, dtype="int8")) for r in ("torch", "pipeline")]
    for res in results:
        rec = res.record
        assert res.status == "ok", rec["message"]
        assert rec["parity_ok"] is (True if rec["runner"] == "pipeline" else None)
        assert rec["quant_method"].startswith("torchao ") and "Int8DynamicActivationInt8WeightConfig" in rec["quant_method"]
    # the module both paths called really holds int8 weights
    task_bundles = [b for k, b in tiny_session.workbench.loaded.items() if k[3] == "int8"]
    linear = next(m for m in task_bundles[0].module.modules() if isinstance(m, torch.nn.Linear))
    assert "Int8" in type(linear.weight).__name__
    fp32 = tiny_session.run_case(_case(runner="torch"))
    assert fp32.record["quant_method"] is None


def test_int8_weight_only_is_recorded(tiny_session):
    res = tiny_session.run_case(_case(dtype="int8", options=(("int8", "weight-only"),)))
    assert res.status == "ok", res.record["message"]
    assert "Int8WeightOnlyConfig" in res.record["quant_method"]


def test_precisions_a_device_cannot_run_are_skipped_with_the_reason(tiny_session):
    from benchbed.models.precision import precision_unavailable

    assert "MPS" in precision_unavailable("int8", "mps")
    assert "unknown int8 method" in precision_unavailable("int8", "cpu", "int4")
    assert precision_unavailable("bf16", "cpu") is None
    rec = tiny_session.run_case(_case(device="cuda", dtype="fp16")).record
    if rec["status"] == "skipped":  # no GPU here: the reason, not an error
        assert "CUDA is not available" in rec["message"]
    bf16 = tiny_session.run_case(_case(dtype="bf16", runner="pipeline")).record
    assert bf16["status"] == "ok" and bf16["parity_ok"] is True


def test_attention_implementations_are_axes(tiny_session):
    eager = tiny_session.run_case(_case(attn_impl="eager")).record
    default = tiny_session.run_case(_case()).record
    assert eager["status"] == default["status"] == "ok"
    assert eager["attn_impl"] == "eager" and default["attn_impl"] == "sdpa"
    flash = tiny_session.run_case(_case(attn_impl="flash_attention_2")).record
    assert flash["status"] == "skipped" and "flash" in flash["message"]


def test_compile_time_is_recorded_apart_from_the_samples(tiny_session):
    opts = (("compile_backend", "aot_eager"),)
    torch_res = tiny_session.run_case(_case(compiled=True, options=opts))
    rec = torch_res.record
    assert torch_res.status == "ok", rec["message"]
    assert rec["compiled"] is True and rec["compile_backend"] == "aot_eager"
    assert rec["compile_graphs"] >= 1 and rec["compile_s"] > 0
    # the compiling calls are not among the samples: every sample is far below the compile time
    assert max(rec["samples_s"]) < rec["compile_s"] / 3
    assert rec["noise"] is None or "recompiled" not in rec["noise"]
    pipe = tiny_session.run_case(_case(compiled=True, runner="pipeline", options=opts)).record
    assert pipe["status"] == "ok" and pipe["parity_ok"] is True
    # the pipeline calls the same compiled module; what its own call signature compiles is timed
    # into its own compile_s, never into its samples
    assert pipe["compile_s"] is not None and (pipe["compile_graphs"] == 0 or max(pipe["samples_s"]) < pipe["compile_s"])
    assert pipe["noise"] is None or "recompiled" not in pipe["noise"]
    plain = tiny_session.run_case(_case()).record
    assert plain["compile_s"] is None and plain["compiled"] is False


def test_flops_and_efficiency_against_the_measured_peak(tiny_session):
    from benchbed.measure.flops import count_flops, matmul_peak_tflops

    import torch

    lin = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(8, 64)
    assert count_flops(lambda: lin(x)) == 2 * 8 * 64 * 32
    from conftest import on_a_quiet_machine

    # the matmul peak probe and the case both time real work: a busy neighbour makes the fraction wrong
    rec = on_a_quiet_machine(lambda: tiny_session.run_case(_case()).record)
    assert rec["flops_per_call"] > 0
    assert rec["achieved_tflops"] == pytest.approx(rec["flops_per_call"] / rec["lat_median_s"] / 1e12)
    peak, probe = matmul_peak_tflops("cpu", "fp32")
    assert rec["peak_tflops"] == peak and "matmul" in rec["peak_probe"]
    assert rec["peak_fraction"] == pytest.approx(rec["achieved_tflops"] / peak)
    assert 0 < rec["peak_fraction"] < 1.5


def test_tf32_setting_is_applied_and_recorded(tmp_path, fast_rule):
    import torch

    from benchbed.engine import EngineConfig, Session

    before = torch.backends.cuda.matmul.allow_tf32
    try:
        s = Session(str(tmp_path / "r"), EngineConfig(rule=fast_rule, tf32=True))
        rec = s.run_case(_case(batch_size=1, seq_len=16)).record
        assert rec["tf32"] is True
        torch.backends.cuda.matmul.allow_tf32 = False
        assert base_record(_case(), s.ctx, s.config)["tf32"] is False
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
