"""The record a case starts from before anything is measured (`base_record`: identity, settings,
environment), and what a measured runner hands back (`CellResult`), for every launcher."""

from __future__ import annotations

import json
from typing import Any

from ..record import empty_record
from ..spec import Case
from .config import EngineConfig, RunContext
from .passes import tf32_cudnn_enabled, tf32_enabled

__all__ = ["CellResult", "base_record"]

#: (case, record, raw samples) of one runner of a cell.
CellResult = tuple[Case, dict[str, Any], tuple[float, ...]]


def base_record(case: Case, ctx: RunContext, config: EngineConfig, pass_index: int = 0) -> dict[str, Any]:
    """The columns every record of `case` has before anything is measured."""
    import torch

    rec = empty_record()
    rec.update({
        "run_id": ctx.run_id, "case_id": case.case_id, "pair_id": case.pair_id, "started_at": ctx.started_at,
        "pass_index": pass_index, "suite": config.suite, "task": case.task, "model": case.model,
        "runner": case.runner, "reference": config.reference, "device": case.device, "dtype": case.dtype,
        "batch_size": case.batch_size, "seq_len": case.seq_len, "new_tokens": case.new_tokens,
        "attn_impl": case.attn_impl, "compiled": case.compiled, "scenario": case.scenario,
        "compile_backend": case.option("compile_backend", "inductor") if case.compiled else None,
        "threads": torch.get_num_threads(), "tf32": tf32_enabled(), "tf32_cudnn": tf32_cudnn_enabled(), "isolated": ctx.in_child,
        "memory_cap_mb": config.memory_cap_mb, "pairing": config.pairing,
        "options": json.dumps({**dict(case.options), **({"inject_slowdown": config.inject_slowdown}
                                                         if config.inject_slowdown and config.inject_runner
                                                         in (None, case.runner) else {})}, sort_keys=True),
    })
    rec.update(ctx.env)
    return rec
