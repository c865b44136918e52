"""Training tasks: the hand-written loop and transformers.Trainer on the same tiny models, really
trained on the CPU — loss parity at every step, the pacing that lets them alternate step by step,
the weight-decay rule, the step-time loop on a fake clock, time to loss, the optimizer's work, and
bad input."""

from __future__ import annotations

import threading
import types

import pandas as pd
import pytest
import torch

from benchbed.execute.drivers import time_to_loss
from benchbed.execute.workbench import Workbench
from benchbed.runners import get_runner
from benchbed.runners.training import TrainerRunner, TrainingRunner, TrainLoopRunner
from benchbed.spec import Case, Matrix, SpecError, Workload
from benchbed.tasks import get_task
from benchbed.tasks.training import TrainSettings, TrainTrace, decay_parameter_names

from conftest import run_cli
from known_models import KnownLinear

pytestmark = pytest.mark.slow


def _runner(cls, case, examples=None, settings=None, **kw):
    task = get_task(case.task)
    bundle = Workbench().bundle(case, task)
    examples = examples if examples is not None else task.make_examples(bundle, 8 * case.batch_size, case.seq_len, 0)
    run = cls(case, task, bundle, examples, lambda: None, **kw)
    if settings is not None:
        run.settings = settings
    return run


@pytest.mark.parametrize("task, model", [("train-text-classification", "synthetic:bert-tiny"),
                                         ("train-causal-lm", "synthetic:gpt2-tiny"),
                                         ("train-causal-lm", "synthetic:llama-tiny")])
def test_weight_decay_rule_is_the_trainers(task, model):
    from transformers import Trainer

    case = Case(task=task, model=model)
    module = Workbench().bundle(case, get_task(task)).module
    decay = decay_parameter_names(module)
    # the Trainer builds its groups from named_parameters() (tied weights once), as the loop does
    named = {n for n, _ in module.named_parameters()}
    assert decay == set(Trainer.get_decay_parameter_names(None, module)) & named
    assert decay and not any("bias" in n or "norm" in n.lower() for n in decay)


def _train_cli(tmp_path, tasks, models, accum):
    p = run_cli("run", "--task", tasks, "--model", models, "--dtype", "fp32", "--batch-size", "2", "--seq-len", "16",
                "--grad-accum", accum, "--min-samples", "5", "--max-time", "0.3", "--results", str(tmp_path / "r"))
    return p, pd.read_parquet(tmp_path / "r")


def test_both_paths_train_alike_step_by_step_from_the_cli(tmp_path):
    """The real thing: bert-tiny and llama-tiny, both training tasks."""
    p, df = _train_cli(tmp_path, "train-text-classification,train-causal-lm", "synthetic:bert-tiny,synthetic:llama-tiny",
                       "1")
    assert p.returncode == 0, p.stderr[-3000:]
    assert len(df) == 8 and set(df["runner"]) == {"torch", "trainer"} and (df["status"] == "ok").all(), \
        df[["task", "model", "runner", "status", "message"]].to_string()
    assert (df["schema_version"] >= 7).all() and (df["grad_accum"] == 1).all()
    _check_pairs(df)
    assert "trainer/torch [95% CI]" in p.stdout
    # the report's training section: the table and the overlaid loss curves
    r = run_cli("report", str(tmp_path / "r"), "-o", str(tmp_path / "report.html"))
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "report.html").read_text()
    assert "Training: the hand-written loop vs transformers.Trainer" in page and "max |Δloss|" in page
    assert "Loss at every optimizer step, both paths overlaid" in page and "Median phases of a step" in page
    from benchbed.report.sections import training as charts

    svg, _ = charts.loss_curves(df)
    assert b"optimizer step" in svg and svg.count(b"trainer") >= 4  # a legend entry per panel
    svg, _ = charts.training_phases(df)
    assert b"ms per step (median phases)" in svg and b"optim" in svg


def test_gradient_accumulation_trains_alike_or_the_trainers_loss_scaling_is_named(tmp_path):
    """A causal LM normalises its loss by the tokens of the whole accumulated batch and trains alike;
    in transformers 5.x a BERT sequence classifier takes Trainer's loss kwargs but averages per
    micro-batch, so Trainer back-propagates 2x the loss: then the mismatch names that cause."""
    p, df = _train_cli(tmp_path, "train-causal-lm,train-text-classification", "synthetic:llama-tiny", "2")
    assert p.returncode in (0, 1) and (df["status"] == "ok").all() and (df["grad_accum"] == 2).all()
    lm = df[df["task"] == "train-causal-lm"]
    _check_pairs(lm)
    cls = df[(df["task"] == "train-text-classification") & (df["runner"] == "trainer")].iloc[0]
    assert bool(cls["parity_ok"]) or "not divided by the 2 accumulation steps" in cls["parity_detail"], \
        cls["parity_detail"]
    assert "accum=2" in p.stdout


def _check_pairs(df):
    for _, pair in df.groupby("pair_id"):
        ref = pair[pair["runner"] == "torch"].iloc[0]
        tr = pair[pair["runner"] == "trainer"].iloc[0]
        assert bool(tr["parity_ok"]), tr["parity_detail"]
        assert "weights after 6 steps" in tr["parity_detail"]
        # the whole curve, parity, warm-up and timed steps alike, not only the parity steps
        n = min(len(ref["loss_curve"]), len(tr["loss_curve"]))
        # parity steps, warm-up steps and every timed step (--max-time may stop a busy machine's
        # timing before --min-samples; the curve still covers all it took)
        assert n == 6 + int(ref["warmup"]) + int(min(ref["n_samples"], tr["n_samples"])) and n >= 6 + 2 + 3
        if " x loss (torch) at all" in tr["parity_detail"]:  # a named normalisation factor (BERT as a causal LM)
            ratios = [b / a for a, b in zip(ref["loss_curve"][:n], tr["loss_curve"][:n])]
            assert max(ratios) - min(ratios) < 1e-3 and "label tokens per example" in tr["parity_detail"]
        else:
            assert tr["loss_max_diff"] <= 1e-4, (tr["task"], tr["model"], tr["loss_max_diff"])
        for rec in (ref, tr):
            assert rec["train_steps"] == len(rec["loss_curve"]) == len(rec["step_times_s"])
            per_step = rec["batch_size"] * rec["grad_accum"]
            assert rec["items_per_s"] == pytest.approx(per_step / rec["lat_median_s"])
            assert rec["tokens_per_s"] == pytest.approx(per_step * 16 / rec["lat_median_s"])
            assert all(rec[k] > 0 for k in ("fwd_s", "bwd_s", "optim_s")) and rec["data_s"] >= 0
            seen = ref["loss_curve"][:len(rec["loss_curve"])]
            assert rec["target_loss"] == pytest.approx(seen[0] - (seen[0] - min(seen)) / 2)
            assert rec["steps_to_loss"] >= 1 and rec["time_to_loss_s"] > 0
            assert rec["cpu_rss_peak_delta_mb"] is not None and rec["setup_s"] > 0
        assert tr["steps_to_loss"] == ref["steps_to_loss"]  # the same curve crosses the target at the same step


def test_trainer_takes_exactly_one_step_per_call_and_lets_go():
    case = Case(task="train-causal-lm", model="synthetic:llama-tiny", runner="trainer", batch_size=2, seq_len=8)
    run = _runner(TrainerRunner, case)
    before = threading.active_count()
    run.prepare()
    try:
        assert run.trainer.state.global_step == 0  # set up, waiting in on_train_begin
        for k in range(1, 4):
            run()
            assert run.trainer.state.global_step == k and len(run.losses) == k
    finally:
        run.close()
    assert not run.pacer.alive and threading.active_count() <= before


def test_raw_loop_matches_trainer_in_bf16_autocast():
    case = Case(task="train-text-classification", model="synthetic:bert-tiny", dtype="bf16", batch_size=2, seq_len=16)
    task = get_task(case.task)
    raw, tr = _runner(TrainLoopRunner, case), _runner(TrainerRunner, case.pair("trainer"))
    raw.prepare()
    tr.prepare()
    try:
        verdict = task.compare(raw.trace(4), tr.trace(4), "bf16")
    finally:
        raw.close()
        tr.close()
    assert verdict.ok, verdict.detail


class _Clocked(TrainingRunner):
    """A training runner whose step advances a fake clock by known amounts."""

    NAME = "clocked"

    def __init__(self, durations):
        self.now, self.durations = 0.0, list(durations)
        case = Case("train-text-classification", "synthetic:bert-tiny")
        super().__init__(case, types.SimpleNamespace(settings=TrainSettings()), None, [], lambda: None,
                         clock=lambda: self.now)
        self.pacer = types.SimpleNamespace(step=self.step)

    def step(self):
        self.now += self.durations.pop(0)
        self.losses.append(torch.tensor(1.0))


def test_step_times_come_from_the_runners_clock_and_time_to_loss_sums_them():
    run = _Clocked([0.5, 0.1, 0.2, 0.3])
    for _ in range(4):
        run()
    assert run.step_s == pytest.approx([0.5, 0.1, 0.2, 0.3])
    assert time_to_loss([3.0, 2.0, 1.5, 1.0], run.step_s, 1.5) == (3, pytest.approx(0.8))
    assert time_to_loss([3.0, 2.0], [1.0, 1.0], 1.0) == (None, None)


def _linear_runner(width, steps_seen=None):
    examples = [{"input_ids": torch.arange(4) + i, "attention_mask": torch.ones(4, dtype=torch.long),
                 "labels": torch.arange(4) + 2 * i} for i in range(8)]
    bundle = types.SimpleNamespace(module=KnownLinear(width).requires_grad_(False))
    case = Case("train-text-classification", "synthetic:bert-tiny", batch_size=2)
    run = TrainLoopRunner(case, types.SimpleNamespace(settings=TrainSettings()), bundle, examples, lambda: None)
    run.prepare()
    return run


def test_the_raw_loops_optimizer_updates_every_parameter_once_per_step():
    run = _linear_runner(64)
    start = {n: p.detach().clone() for n, p in run.model.named_parameters()}
    for _ in range(3):
        run()
    run.close()
    params = [p for g in run.optimizer.param_groups for p in g["params"]]
    assert sum(p.numel() for p in params) == 64 * 64 + 64 == sum(p.numel() for p in run.model.parameters())
    assert all(float(run.optimizer.state[p]["step"]) == 3 for p in params)
    assert all(not torch.equal(start[n], p) for n, p in run.model.named_parameters())
    decay = {g["weight_decay"]: sum(p.numel() for p in g["params"]) for g in run.optimizer.param_groups}
    assert decay == {0.01: 64 * 64, 0.0: 64}  # the bias is not decayed
    assert all(p.grad is None for p in params)  # zero_grad(set_to_none=True)


def test_the_optimizer_phase_grows_with_the_parameter_count():
    """AdamW touches every parameter: 256x the parameters takes clearly longer (a wide margin: the
    work grows 256x, and a step of the small model is mostly fixed overhead — at 64x it measured
    only 3.6x)."""
    def optim_s(width):
        run = _linear_runner(width)
        run()
        try:
            return sorted(run.call_with_phases()[1]["optim"] for _ in range(5))[2]
        finally:
            run.close()

    assert optim_s(2048) > 4 * optim_s(128)


def test_training_runners_say_why_they_cannot_serve_a_case():
    task = get_task("train-text-classification")
    for dtype, words in (("fp16", "needs a CUDA device"), ("int8", "cannot be trained")):
        case = Case(task=task.name, model="synthetic:bert-tiny", dtype=dtype)
        assert words in TrainLoopRunner.unavailable(task, case)
        assert words in TrainerRunner.unavailable(task, case)
    assert "compiled training" in TrainLoopRunner.unavailable(task, Case(task=task.name, model="m", compiled=True))
    assert "serves training tasks only" in TrainerRunner.unavailable(get_task("text-classification"),
                                                                    Case(task="text-classification", model="m"))
    assert get_runner("torch", "train-causal-lm") is TrainLoopRunner
    assert get_runner("torch", "fill-mask") is not TrainLoopRunner
    with pytest.raises(SpecError, match="not a training runner"):
        get_runner("pipeline", "train-causal-lm")


def test_a_training_matrix_runs_torch_and_trainer_unless_told_and_expands_accumulation():
    m = Matrix(task=("train-text-classification", "fill-mask"), model=("m",),
               workload=Workload(grad_accum=(1, 4), workers=(0, 2)))
    by_task = {}
    for c in m.cases():
        by_task.setdefault(c.task, set()).add((c.runner, c.option("grad_accum"), c.option("workers")))
    assert by_task["train-text-classification"] == {(r, g, w) for r in ("torch", "trainer") for g in (1, 4)
                                                    for w in (0, 2)}
    assert by_task["fill-mask"] == {("torch", None, None), ("pipeline", None, None)}
    assert len(m) == len(m.cases()) == 8 + 2
    named = m.narrow(runner=["torch"])
    assert {c.runner for c in named.cases()} == {"torch"}
    with pytest.raises(SpecError, match="accumulation steps must be integers from 1"):
        Matrix(task=("train-causal-lm",), model=("m",), workload=Workload(grad_accum=(0,))).validate()


def test_a_loss_off_by_a_constant_factor_is_named_and_the_weights_decide():
    task = get_task("train-causal-lm")
    w = {"a": torch.ones(3)}
    raw = TrainTrace([2.0, 1.8, 1.7], w, grad_accum=2, seq_len=32)
    for factor, words in ((2.0, "not divided by the 2 accumulation steps"),
                          (31 / 32, "all 32 label tokens per example, not the 31"),
                          (2 * 31 / 32, "not divided by the 2 accumulation steps, and the summed loss")):
        other = TrainTrace([x * factor for x in raw.losses], {"a": torch.ones(3)})
        verdict = task.compare(raw, other, "fp32")
        assert verdict.ok and words in verdict.detail, verdict.detail
        moved = TrainTrace(other.losses, {"a": torch.ones(3) + 1e-3})
        assert not task.compare(raw, moved, "fp32").ok
    drifting = TrainTrace([2.0, 1.9, 1.0], w)
    verdict = task.compare(raw, drifting, "fp32")
    assert not verdict.ok and verdict.detail.startswith("step 2: loss 1.8 (torch) vs 1.9")


def test_sgd_adam_and_adamw_train_alike_on_both_paths(tmp_path):
    """The optimizer axis (issue #34): the same optimizer on both paths, loss parity per optimizer,
    the route the Trainer took, its state, and an SGD step cheaper than AdamW's."""
    p = run_cli("run", "--task", "train-text-classification", "--model", "synthetic:bert-tiny", "--dtype", "fp32",
                "--batch-size", "2", "--seq-len", "16", "--optimizer", "sgd,adam,adamw", "--min-samples", "5",
                "--max-time", "0.3", "--results", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "r")
    assert len(df) == 6 and (df["status"] == "ok").all(), df[["runner", "optimizer", "message"]].to_string()
    _check_pairs(df)
    routes = dict(zip(df[df["runner"] == "trainer"]["optimizer"], df[df["runner"] == "trainer"]["trainer_optimizer"]))
    assert routes["sgd"] == "optim=sgd, optim_args=momentum=0" and routes["adam"].startswith("optimizers=(")
    assert routes["adamw"].startswith("optim=adamw_torch")
    state = df[df["runner"] == "torch"].set_index("optimizer")
    assert state.loc["sgd", "optimizer_state_mb"] == 0 and state.loc["adam", "optimizer_state_mb"] > 0
    assert state.loc["adamw", "optimizer_state_mb"] == pytest.approx(state.loc["adam", "optimizer_state_mb"])
    # SGD keeps no state and does one axpy per tensor: its step is below AdamW's
    assert state.loc["sgd", "optim_s"] < state.loc["adamw", "optim_s"]
    # the default optimizer leaves the case id as it was before the axis
    assert df[df["optimizer"] == "adamw"]["options"].map(lambda o: "optimizer" not in o).all()
    # the report's training section: the Trainer ÷ loop step ratio with its CI, per optimizer
    r = run_cli("report", str(tmp_path / "r"), "-o", str(tmp_path / "report.html"))
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "report.html").read_text()
    assert "optimizer step ms" in page and "optimizer state MB" in page
    assert all(f"<td>{o}</td>" in page for o in ("sgd", "adam", "adamw"))


@pytest.mark.parametrize("args, words", [
    (["--optimizer", "rmsprop"], "--optimizer: unknown optimizer 'rmsprop' (valid: sgd, adam, adamw)"),
    (["--learning-rate", "0"], "--learning-rate must be a positive number"),
    (["--learning-rate", "nan"], "--learning-rate must be a finite number"),
    (["--learning-rate", "inf"], "--learning-rate must be a finite number"),
    (["--momentum", "1"], "--momentum must be from 0 up to (not including) 1"),
    (["--task", "text-classification", "--optimizer", "sgd"], "--optimizer applies to training tasks only"),
])
def test_a_bad_optimizer_setting_is_one_line_exit_2_and_nothing_written(tmp_path, args, words):
    base = ["run", "--task", "train-text-classification", "--model", "synthetic:bert-tiny",
            "--results", str(tmp_path / "r")]
    p = run_cli(*base, *args)
    assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "r").exists()
