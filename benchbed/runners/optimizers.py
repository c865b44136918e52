"""The optimizers of the training tasks (the ``optimizer`` axis, issue #34): the same optimizer for
the hand-written loop and for `transformers.Trainer`, built the same way.

- ``sgd``: ``torch.optim.SGD`` at lr 0.01, momentum 0, no weight decay — the loop most PyTorch
  users write first (``optim.SGD(model.parameters(), lr=0.01)``); no state.
- ``adam``: ``torch.optim.Adam`` (no decoupled weight decay, and none coupled either), lr 5e-5.
- ``adamw``: ``torch.optim.AdamW`` with weight decay 0.01 off for biases and norms, lr 5e-5, fused
  where the device has the kernel — the Trainer's default (the default of the axis).

The Trainer gets its own optimizer name where one matches (``optim="sgd"``, ``"adamw_torch"`` /
``"adamw_torch_fused"``); it has no plain Adam, so ``adam`` goes in as ``optimizers=(Adam, None)``.
Records say which (``trainer_optimizer``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..values import DEFAULT_OPTIMIZER, OPTIMIZERS

__all__ = ["OPTIMIZERS", "DEFAULT_OPTIMIZER", "OptimizerSpec", "optimizer_spec", "param_groups", "make_optimizer",
           "trainer_route"]

#: the seed's learning rates: SGD's textbook 0.01; Adam and AdamW the Trainer's default
DEFAULT_LR = {"sgd": 0.01, "adam": 5e-5, "adamw": 5e-5}


@dataclass(frozen=True)
class OptimizerSpec:
    """Which optimizer, at what learning rate, momentum (SGD) and weight decay."""

    name: str
    lr: float
    momentum: float
    weight_decay: float


def optimizer_spec(case: Any, settings: Any) -> OptimizerSpec:
    """The optimizer of `case` (its ``optimizer``, ``learning_rate`` and ``momentum`` options)."""
    name = str(case.option("optimizer", DEFAULT_OPTIMIZER))
    lr = case.option("learning_rate")
    return OptimizerSpec(name=name, lr=float(lr) if lr is not None else DEFAULT_LR[name],
                         momentum=float(case.option("momentum", 0.0)),
                         weight_decay=settings.weight_decay if name == "adamw" else 0.0)


def param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """The Trainer's two groups: weight decay on all but biases and norms, none on those."""
    from ..tasks.training import decay_parameter_names

    decay = decay_parameter_names(model)
    params = list(model.named_parameters())
    return [{"params": [p for n, p in params if n in decay and p.requires_grad], "weight_decay": weight_decay},
            {"params": [p for n, p in params if n not in decay and p.requires_grad], "weight_decay": 0.0}]


def make_optimizer(spec: OptimizerSpec, model: Any, settings: Any, fused: bool) -> Any:
    """The torch optimizer the raw loop steps (and the Trainer's, where it takes an object)."""
    import torch

    groups = param_groups(model, spec.weight_decay)
    if spec.name == "sgd":
        return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum)
    betas, eps = (settings.adam_beta1, settings.adam_beta2), settings.adam_epsilon
    if spec.name == "adam":
        return torch.optim.Adam(groups, lr=spec.lr, betas=betas, eps=eps)
    return torch.optim.AdamW(groups, lr=spec.lr, betas=betas, eps=eps, fused=fused)


def trainer_route(spec: OptimizerSpec, fused: bool) -> tuple[str | None, str]:
    """(the Trainer's ``optim`` name, or None for an object passed as ``optimizers=(opt, None)``;
    what the record says)."""
    if spec.name == "sgd":
        return "sgd", f"optim=sgd, optim_args=momentum={spec.momentum:g}"
    if spec.name == "adamw":
        name = "adamw_torch_fused" if fused else "adamw_torch"
        return name, f"optim={name}"
    return None, "optimizers=(torch.optim.Adam, None)"
