"""The two training runners: ``torch`` (a hand-written loop) and ``trainer`` (`transformers.Trainer`).

Each call is one optimizer step (forward and backward of ``grad_accum`` micro-batches, gradient
clipping, the optimizer step, zeroing the gradients) on the next examples, so the engine times,
interleaves and pairs training steps exactly like inference calls. Each runner trains its own copy
of the cell's module (the cached one stays untouched for later cells).

`Trainer.train()` is one call that runs its own loop, so the ``trainer`` runner runs it in a thread
and paces it (`Pacer`): a callback blocks at the end of every step until the engine asks for the
next one. A timed call is then exactly one turn of the Trainer's loop — its data loading and
collation, its per-step bookkeeping and callbacks, forward, backward, clipping, optimizer and
scheduler steps — and the two paths can alternate step by step in the same time window. The raw
loop runs in a paced thread of its own too, so the paths differ only in their loops.
"""

from __future__ import annotations

import copy
import time
from typing import Any, ClassVar

from ..scratch import contain_multiprocessing, scratch_root
from .base import PhaseTimes, Runner
from .optimizers import make_optimizer, optimizer_spec, trainer_route
from .pacer import Examples as _Examples
from .pacer import Pacer

__all__ = ["TrainingRunner", "TrainLoopRunner", "TrainerRunner", "AUTOCAST"]

#: torch dtypes autocast runs in, by the case's dtype (fp32: no autocast).
AUTOCAST = {"bf16": "bfloat16", "fp16": "float16"}
class TrainingRunner(Runner):
    """What both training runners share: a private copy of the module, the step counter, the loss
    of every step, and the phase hooks."""

    FAMILY: ClassVar[str] = "training"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Micro-batches per optimizer step (the ``grad_accum`` option) and the task's settings.
        self.grad_accum = int(self.case.option("grad_accum", 1))
        self.settings = self.task.settings
        #: the optimizer both paths step (the ``optimizer`` axis, `runners.optimizers`)
        self.optim = optimizer_spec(self.case, self.settings)
        self.losses: list[Any] = []  # one detached scalar tensor per step (no sync to read it)
        self.step_s: list[float] = []  # each step's seconds, by the runner's own clock
        self.model: Any = None
        self._marks: list[tuple[str, float]] | None = None

    @classmethod
    def unavailable(cls, task: Any, case: Any) -> str | None:
        if not getattr(task, "trains", False):
            return f"the {cls.NAME} training runner serves training tasks only"
        if case.compiled:
            return "compiled training is not measured yet (run with --compiled false)"
        if case.dtype == "int8":
            return "int8 weights cannot be trained (valid training dtypes: fp32, bf16, fp16 on CUDA)"
        if case.dtype == "fp16" and not case.device.startswith("cuda"):
            return "fp16 training needs a CUDA device (a gradient scaler on fp16 autocast)"
        from ..scenarios import DEFAULT_SCENARIO

        if case.scenario != DEFAULT_SCENARIO:
            return f"training runs step by step; the {case.scenario} scenario does not apply"
        return None

    def state_bytes(self) -> int | None:
        """This runner's own copy of the module: parameters, buffers, gradients and optimizer state
        (not the cell's shared module, not the other runner's copy)."""
        from .base import tensor_bytes

        if self.model is None:
            return None
        params = list(self.model.parameters())
        optimizer = self.optimizer_object()
        state = [] if optimizer is None else [v for st in optimizer.state.values() for v in st.values()
                                                if hasattr(v, "untyped_storage")]
        return tensor_bytes(params, self.model.buffers(), [p.grad for p in params], state)

    def optimizer_object(self) -> Any:
        """The optimizer stepping `model` (None before it exists)."""
        return getattr(self, "optimizer", None)

    def copy_model(self) -> Any:
        """The runner's own copy of the cell's module, in training mode."""
        model = copy.deepcopy(self.bundle.module)
        model.train()
        for p in model.parameters():  # loaded for inference, with gradients off
            p.requires_grad_(p.is_floating_point())
        return model

    def curve(self, steps: int | None = None) -> Any:
        """The loss of the first `steps` steps so far (all when None), as a `TrainTrace` without
        weights (what the whole-curve parity and the normalisation factor compare)."""
        from ..tasks.training import TrainTrace

        return TrainTrace(losses=self.loss_values()[:steps], weights={}, grad_accum=self.grad_accum,
                          seq_len=self.label_tokens)

    def trace(self, steps: int) -> Any:
        """Take `steps` steps; return the loss of every step so far and the weights (parity)."""
        for _ in range(steps):
            self()
        self.sync()
        trace = self.curve()
        trace.weights = {n: p.detach().float().cpu().clone() for n, p in self.model.named_parameters()}
        return trace

    @property
    def label_tokens(self) -> int:
        """Labels per example when they are tokens (causal LM), else 0 (one class per example)."""
        labels = self.inputs[0]["labels"] if self.inputs else None
        return int(labels.numel()) if labels is not None and labels.dim() else 0

    def loss_values(self) -> list[float]:
        return [float(x) for x in self.losses]

    def __call__(self) -> float:
        """One optimizer step, taken by the runner's worker thread (`Pacer`)."""
        t0 = self.clock()
        self.pacer.step()
        self.step_s.append(self.clock() - t0)
        return self.step_s[-1]

    def close(self) -> None:
        pacer = getattr(self, "pacer", None)
        if pacer is not None:
            pacer.close()

    # -- phases: the same hooks on both runners, so both split their step the same way ----------
    def _mark(self, what: str) -> None:
        if self._marks is not None:
            self.sync()
            self._marks.append((what, self.clock()))

    def install_phase_hooks(self, optimizer: Any) -> None:
        """Timestamps at each forward's start and end and around the optimizer step (recorded only
        during `call_with_phases`)."""
        self.model.register_forward_pre_hook(lambda *a: self._mark("f0"))
        self.model.register_forward_hook(lambda *a: self._mark("f1"))
        optimizer.register_step_pre_hook(lambda *a: self._mark("o0"))
        optimizer.register_step_post_hook(lambda *a: self._mark("o1"))

    def call_with_phases(self) -> tuple[Any, PhaseTimes]:
        """One step split at the hooks: ``data`` (fetching and collating the batch, and anything the
        loop does before the first forward), ``fwd`` (the forwards), ``bwd`` (the backwards and
        gradient clipping: first forward's start to the optimizer step, less the forwards),
        ``optim`` (the optimizer step), ``after`` (zeroing gradients, the scheduler, callbacks)."""
        self._marks = []
        self.sync()
        t0 = self.clock()
        out = self()
        self.sync()
        end = self.clock()
        marks, self._marks = self._marks, None
        f0 = [t for k, t in marks if k == "f0"]
        f1 = [t for k, t in marks if k == "f1"]
        o0 = [t for k, t in marks if k == "o0"]
        o1 = [t for k, t in marks if k == "o1"]
        if not (f0 and len(f0) == len(f1) and o0 and o1):
            return out, {}
        fwd = sum(b - a for a, b in zip(f0, f1))
        return out, {"data": f0[0] - t0, "fwd": fwd, "bwd": o0[0] - f0[0] - fwd, "optim": o1[-1] - o0[0],
                     "after": end - o1[-1]}


class TrainLoopRunner(TrainingRunner):
    """The hand-written loop a careful PyTorch user writes: a DataLoader over the examples in order,
    autocast for bf16/fp16 (with a gradient scaler for fp16), the loss divided by the accumulation
    steps, ``clip_grad_norm_``, AdamW with weight decay off for biases and norms (what Trainer does),
    ``zero_grad(set_to_none=True)``; no scheduler."""

    NAME = "torch"
    DESCRIPTION = "training: a hand-written loop (DataLoader, autocast, backward, clip, AdamW step, zero_grad)"

    def prepare(self) -> float:
        import torch

        t0 = time.perf_counter()
        self.model = self.copy_model()
        self.optimizer = make_optimizer(self.optim, self.model, self.settings, _fused_ok(self.device))
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == "fp16" else None
        if self.workers:
            contain_multiprocessing()
        self.loader = torch.utils.data.DataLoader(_Examples(self.inputs), batch_size=self.batch_size, shuffle=False,
                                                  num_workers=self.workers)
        self._batches = iter(())
        self.install_phase_hooks(self.optimizer)
        self.pacer = Pacer("benchbed-train-loop")
        self.pacer.start(self._loop)
        return time.perf_counter() - t0

    def _loop(self) -> None:
        while not self.pacer.wait():
            self._step()

    def _next(self) -> dict[str, Any]:
        try:
            batch = next(self._batches)
        except StopIteration:  # the next epoch, in the same order
            self._batches = iter(self.loader)
            batch = next(self._batches)
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _step(self) -> None:
        import torch

        model, opt, scaler, ga = self.model, self.optimizer, self.scaler, self.grad_accum
        cast = getattr(torch, AUTOCAST.get(self.dtype, "float32"))
        total = None
        for i in range(ga):
            batch = self._next()
            if i == 0:  # the Trainer's runner reseeds at the same point (on_step_begin)
                torch.manual_seed(self.seed + len(self.losses))
            with torch.autocast(_device_type(self.device), dtype=cast, enabled=self.dtype in AUTOCAST):
                loss = model(**batch).loss / ga
            (scaler.scale(loss) if scaler is not None else loss).backward()
            total = loss.detach() if total is None else total + loss.detach()
        if scaler is not None:
            scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), self.settings.max_grad_norm)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        self.losses.append(total)


def one_device(args: Any) -> Any:
    """Keep `TrainingArguments` on one GPU: outside distributed training transformers sets
    ``n_gpu = torch.cuda.device_count()`` and the Trainer then wraps the model in
    ``nn.DataParallel``, so on a multi-GPU host each step would be batch × GPUs examples split
    across devices, failing parity with the loop and timing something else. The device it picks
    (``cuda:0`` under ``CUDA_VISIBLE_DEVICES``) is kept; only the count is pinned."""
    if args.n_gpu > 1:
        args._n_gpu = 1
    return args


class TrainerRunner(TrainingRunner):
    """`transformers.Trainer` with `TrainingArguments` set to the same hyperparameters: sequential
    sampling, a constant learning rate, logging, saving and evaluation off, ``bf16``/``fp16`` for
    autocast, ``dataloader_num_workers`` from the ``workers`` option. Its optimizer is its default
    (``adamw_torch_fused`` on torch >= 2.8), and the raw loop uses the same fused AdamW."""

    NAME = "trainer"
    DESCRIPTION = "training: transformers.Trainer, paced one optimizer step per call"

    @classmethod
    def unavailable(cls, task: Any, case: Any) -> str | None:
        reason = super().unavailable(task, case)
        if reason:
            return reason
        import importlib.util

        if importlib.util.find_spec("accelerate") is None:
            return "transformers.Trainer needs the accelerate package: pip install 'benchbed[train]'"
        from transformers import TrainingArguments

        if "train_sampling_strategy" not in TrainingArguments.__dataclass_fields__:
            return ("this transformers has no sequential train sampling (TrainingArguments.train_sampling_strategy, "
                    "transformers >= 5), so both paths cannot see the same examples in the same order")
        if case.device.startswith("cuda:") and case.device != "cuda:0":
            return "the trainer runner trains on the default CUDA device only (cuda or cuda:0)"
        return None

    def optimizer_object(self) -> Any:
        trainer = getattr(self, "trainer", None)
        return getattr(trainer, "optimizer", None)

    def prepare(self) -> float:
        import tempfile

        import torch
        from transformers import Trainer, TrainerCallback, TrainingArguments

        t0 = time.perf_counter()
        s, o = self.settings, self.optim
        self.model = self.copy_model()
        self._dir = tempfile.TemporaryDirectory(prefix="trainer-", dir=scratch_root())
        fused = _fused_ok(self.device)
        optim, self.route = trainer_route(o, fused)
        by_name = {} if optim is None else {"optim": optim}
        if o.name == "sgd":
            by_name["optim_args"] = f"momentum={o.momentum!r}"
        args = TrainingArguments(
            output_dir=self._dir.name, per_device_train_batch_size=self.batch_size,
            gradient_accumulation_steps=self.grad_accum, max_steps=10**9, learning_rate=o.lr,
            weight_decay=o.weight_decay, adam_beta1=s.adam_beta1, adam_beta2=s.adam_beta2, adam_epsilon=s.adam_epsilon,
            max_grad_norm=s.max_grad_norm, lr_scheduler_type="constant", warmup_steps=0,
            train_sampling_strategy="sequential", dataloader_num_workers=self.workers, seed=self.seed,
            bf16=self.dtype == "bf16", fp16=self.dtype == "fp16", use_cpu=self.device == "cpu",
            logging_strategy="no", save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
            **by_name)
        one_device(args)
        if self.workers:
            contain_multiprocessing()
        runner = self
        self.pacer = pacer = Pacer("benchbed-trainer")

        class Pacing(TrainerCallback):
            """Blocks the Trainer's loop between steps until the engine asks for the next one."""

            def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                pacer.wait()

            def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                torch.manual_seed(runner.seed + state.global_step)  # as the raw loop does

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if pacer.wait():
                    control.should_training_stop = True

        class StepLossTrainer(Trainer):
            """Trainer that keeps the loss each micro-batch back-propagated (the value `training_step`
            returns, already divided for accumulation), summed per optimizer step."""

            def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
                loss = super().training_step(model, inputs, num_items_in_batch)
                runner._micro.append(loss)
                if len(runner._micro) == runner.grad_accum:
                    runner.losses.append(sum(runner._micro[1:], runner._micro[0]))
                    runner._micro = []
                return loss

        self._micro: list[Any] = []
        objects = (None, None) if optim is not None else (make_optimizer(o, self.model, s, fused), None)
        self.trainer = StepLossTrainer(model=self.model, args=args, train_dataset=_Examples(self.inputs),
                                       callbacks=[Pacing()], optimizers=objects)
        from transformers.trainer_callback import PrinterCallback

        self.trainer.remove_callback(PrinterCallback)  # it prints the run's summary on stdout at the end
        pacer.start(self.trainer.train)  # returns once the Trainer has set up and waits in on_train_begin
        self.install_phase_hooks(_inner_optimizer(self.trainer.optimizer))
        return time.perf_counter() - t0

    def close(self) -> None:
        super().close()
        if getattr(self, "_dir", None) is not None:
            self._dir.cleanup()
            self._dir = None


def _device_type(device: str) -> str:
    return device.split(":")[0]


def _fused_ok(device: str) -> bool:
    """Whether torch's fused AdamW runs on `device` (the Trainer's default optimizer uses it)."""
    import torch

    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices

        return _device_type(device) in _get_fused_kernels_supported_devices()
    except ImportError:  # older torch: fused AdamW is CUDA-only there
        return device.startswith("cuda") and torch.cuda.is_available()


def _inner_optimizer(optimizer: Any) -> Any:
    """The torch optimizer under accelerate's wrapper (its hooks fire on the real step)."""
    return getattr(optimizer, "optimizer", optimizer)
