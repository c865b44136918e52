"""Training tasks: what is trained (a model head, seeded examples with labels, the loss the model
computes) and the parity rule between two training paths. How a step is taken (a hand-written
loop, ``transformers.Trainer``) is the runner's business (`benchbed.runners.training`).

Both paths start from copies of the same weights, see the same examples in the same order, reseed
torch's generator from (seed, optimizer step) right before each step's first forward (so dropout
draws the same masks), and use the same optimizer settings (`TrainSettings`). Parity is then a
per-step comparison of the loss each path back-propagated, and of the weights after the parity
steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import Parity, Task, Tolerance

__all__ = ["TrainTask", "TrainTextClassification", "TrainCausalLM", "TrainSettings", "TrainTrace",
           "LOSS_TOLERANCES", "WEIGHT_TOLERANCES", "decay_parameter_names", "normalisation_factor"]

#: Loss at every compared step: |a - b| <= atol + rtol*|b|. fp32 runs the same kernels in the same
#: order on both paths, so the losses agree to rounding; bf16/fp16 autocast keeps 8/11 bits.
LOSS_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-4, rtol=1e-4),
    "fp16": Tolerance(atol=1e-2, rtol=1e-2),
    "bf16": Tolerance(atol=2e-2, rtol=2e-2),
}
#: Weights after the parity steps, elementwise. AdamW moves each weight by about the learning rate
#: per step whatever the gradient's size, so a gradient that differs by rounding moves a weight by at
#: most ~lr per step: the tolerance is a few steps' worth of updates at the default lr (5e-5).
WEIGHT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-5, rtol=1e-4),
    "fp16": Tolerance(atol=5e-4, rtol=1e-2),
    "bf16": Tolerance(atol=5e-4, rtol=1e-2),
}


@dataclass(frozen=True)
class TrainSettings:
    """The hyperparameters both paths use (`transformers.TrainingArguments`' defaults, except the
    scheduler: constant, so a step's cost and result do not depend on the planned run length)."""

    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    #: Optimizer steps per pass over the examples (the examples are batch x accumulation x this).
    steps_per_epoch: int = 8
    #: Optimizer steps both paths take before their losses and weights are compared.
    parity_steps: int = 6


@dataclass
class TrainTrace:
    """What a training path produced: the loss of every optimizer step so far (the sum of the
    losses its micro-batches back-propagated) and, for parity, its weights (on the CPU, in fp32)."""

    losses: list[float]
    weights: dict[str, Any]
    #: Micro-batches per step, and label tokens per example (to name a constant loss factor).
    grad_accum: int = 1
    seq_len: int = 0


def decay_parameter_names(model: Any) -> set[str]:
    """Names of the parameters weight decay applies to: all but biases and normalisation weights
    (LayerNorm modules, and names with ``layernorm``, ``rmsnorm`` or a ``norm`` component) — the
    rule `transformers.Trainer` applies, written here so the raw loop does not import the Trainer."""
    import re

    import torch

    norm_types: tuple[type, ...] = (torch.nn.LayerNorm,) + ((torch.nn.RMSNorm,) if hasattr(torch.nn, "RMSNorm") else ())
    forbidden = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)")
    skip: set[str] = set()
    for mod_name, module in model.named_modules():
        if isinstance(module, norm_types) or type(module).__name__.lower().endswith(("layernorm", "rmsnorm")):
            skip.update(f"{mod_name}.{p}" if mod_name else p for p, _ in module.named_parameters(recurse=False))
    return {name for name, _ in model.named_parameters()
            if name not in skip and not forbidden.search(name.lower())}


class TrainTask(Task):
    """Base of the training tasks: seeded examples of exactly ``seq_len`` tokens with labels, and
    loss/weight parity. There is no pipeline for training."""

    trains: ClassVar[bool] = True
    pipeline_task = ""
    single_forward = False
    settings: TrainSettings = TrainSettings()

    def pipeline_available(self) -> bool:
        return False

    def load_dtype(self, dtype: str) -> str:
        """Weights stay fp32: bf16 and fp16 training are autocast over fp32 master weights."""
        return "fp32"

    def labels_for(self, bundle: Any, encoded: Any, seed: int) -> Any:
        raise NotImplementedError

    def make_examples(self, bundle: Any, n: int, seq_len: int, seed: int) -> list[dict[str, Any]]:
        """`n` examples, each a dict of CPU tensors (``input_ids``, ``attention_mask``, ``labels``)
        of exactly `seq_len` tokens."""
        from .text_inputs import make_texts

        tok = bundle.tokenizer
        texts = make_texts(tok, n, seq_len, seed=seed)
        enc = tok(texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt")
        labels = self.labels_for(bundle, enc, seed)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": labels[i]}
                for i in range(n)]

    def compare(self, raw: Any, other: Any, dtype: str) -> Parity:
        """Loss at every step both paths took (up to the shorter), then the weights.

        A loss that differs by the same factor at every step is a normalisation difference (what
        the loss is divided by), not different training: it is named, with its likely cause, and
        the weights decide (traces without weights: the curves alone, a constant factor passes).
        AdamW's update hardly depends on the gradient's scale, and clipping rescales both to the
        same norm, so such paths still train alike."""
        loss_tol, weight_tol = LOSS_TOLERANCES[dtype], WEIGHT_TOLERANCES[dtype]

        def cause(factor: float) -> str:
            return _factor_cause(factor, raw.grad_accum, raw.seq_len)

        n = min(len(raw.losses), len(other.losses))
        if n == 0:
            return Parity(False, "no training steps to compare")
        worst, factor = 0.0, None
        for i in range(n):
            a, b = raw.losses[i], other.losses[i]
            worst = max(worst, abs(a - b))
            if not loss_tol.close(b, a):
                factor = _constant_factor(raw.losses[:n], other.losses[:n], loss_tol)
                if factor is None:
                    detail = f"step {i + 1}: loss {a:.6g} (torch) vs {b:.6g} (pipeline)"
                    first = normalisation_factor(raw, other)
                    if first is not None:  # the first step's loss, before any update, differs by normalisation only
                        detail += (f"; at step 1 the loss (pipeline) was already {first:.4g}x{cause(first)}, and the "
                                   f"paths drifted apart from there (clipping and AdamW's epsilon see the scaled "
                                   f"gradient)")
                    return Parity(False, detail)
                break
        if factor is None:
            detail = f"loss equal at {n} steps (max diff {worst:.2g}, tolerance {loss_tol.atol:g}+{loss_tol.rtol:g}x)"
            first = normalisation_factor(raw, other)
            if first is not None:  # hidden inside a wide (bf16) tolerance, but there all the same
                detail += f", but at step 1 loss (pipeline) = {first:.4g} x loss (torch){cause(first)}"
        else:
            detail = f"loss (pipeline) = {factor:.4g} x loss (torch) at all {n} steps{cause(factor)}"
        if raw.weights and other.weights:
            name, diff, bad = _weights_diff(raw.weights, other.weights, weight_tol)
            if bad:
                return Parity(False, f"{detail}, but weight {name} differs by {diff:.3g} after {n} steps "
                                     f"(torch) vs (pipeline)")
            detail += f"; weights after {n} steps within {weight_tol.atol:g}+{weight_tol.rtol:g}x (max diff {diff:.2g})"
        return Parity(True, detail)


def normalisation_factor(raw: Any, other: Any) -> float | None:
    """other's loss ÷ raw's at the first step — before any update, so a pure difference in what the
    loss is divided by — when it matches a known cause (`_factor_cause`), else None."""
    if not raw.losses or not other.losses or not raw.losses[0]:
        return None
    first = other.losses[0] / raw.losses[0]
    return first if abs(first - 1) > 1e-6 and _factor_cause(first, raw.grad_accum, raw.seq_len) else None


def _constant_factor(a: list[float], b: list[float], tol: Tolerance) -> float | None:
    """b / a when it is the same at every step (within the loss tolerance), else None."""
    if any(x == 0 for x in a):
        return None
    ratios = [y / x for x, y in zip(a, b)]
    r = ratios[0]
    return r if all(abs(q - r) <= 2 * tol.rtol * abs(r) + tol.atol for q in ratios) else None


def _factor_cause(factor: float, grad_accum: int, seq_len: int) -> str:
    """The known normalisation differences a constant loss factor matches, as a clause."""
    accum = f"the loss was not divided by the {grad_accum} accumulation steps"
    causes = [(float(grad_accum), accum)] if grad_accum > 1 else []
    if seq_len > 1:
        shifted = (seq_len - 1) / seq_len
        tokens = (f"the summed loss was divided by all {seq_len} label tokens per example, not the "
                  f"{seq_len - 1} a shifted causal-LM loss averages")
        causes.append((shifted, tokens))
        if grad_accum > 1:
            causes.append((grad_accum * shifted, f"{accum}, and {tokens}"))
    for value, cause in causes:
        if abs(factor - value) <= 1e-3 * value:
            return f" ({cause})"
    return ""


def _weights_diff(a: dict[str, Any], b: dict[str, Any], tol: Tolerance) -> tuple[str, float, bool]:
    """(the parameter that differs most, its largest |difference|, whether any is out of tolerance)."""
    import torch

    worst_name, worst = "", 0.0
    for name, wa in a.items():
        wb = b.get(name)
        if wb is None or wb.shape != wa.shape:
            return name, float("inf"), True
        diff = (wa - wb).abs()
        d = float(diff.max()) if diff.numel() else 0.0
        if d > worst:
            worst_name, worst = name, d
        if not bool(torch.all(diff <= tol.atol + tol.rtol * wb.abs())):
            return name, d, True
    return worst_name, worst, False


class TrainTextClassification(TrainTask):
    name = "train-text-classification"
    head = "sequence-classification"
    labels = ("NEGATIVE", "POSITIVE")
    description = "fine-tune a sequence classifier (cross-entropy on seeded labels); torch loop vs Trainer"

    def labels_for(self, bundle: Any, encoded: Any, seed: int) -> Any:
        import torch

        g = torch.Generator().manual_seed(seed + 1)
        n = encoded["input_ids"].shape[0]
        return torch.randint(0, bundle.module.config.num_labels, (n,), generator=g)


class TrainCausalLM(TrainTask):
    name = "train-causal-lm"
    head = "causal-lm"
    description = "train a causal LM (next-token cross-entropy on the inputs); torch loop vs Trainer"

    def labels_for(self, bundle: Any, encoded: Any, seed: int) -> Any:
        labels = encoded["input_ids"].clone()
        labels[encoded["attention_mask"] == 0] = -100
        return labels
