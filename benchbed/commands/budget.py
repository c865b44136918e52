"""Which budget a run gets (``--budget``): the one asked for, none for ``off``, and the default
run's own where nothing was asked (`defaults.DEFAULT_BUDGET_S`)."""

from __future__ import annotations

import argparse
from typing import Any

from ..spec import Matrix

__all__ = ["run_budget"]


def run_budget(args: argparse.Namespace, matrix: Matrix, rule: Any) -> float | None:
    """The run's budget: ``--budget`` (``off``: none); a plain ``benchbed run`` — the default
    matrix, the default timing options, one pass, a new run — gets `DEFAULT_BUDGET_S`, so the
    README's first command is bounded on a slow or busy host."""
    from ..defaults import DEFAULT_BUDGET_S, DEFAULT_MATRIX
    from ..measure import StopRule
    from ..models import check_model
    from ..runners import runner_names
    from ..tasks import task_names

    given = getattr(args, "budget", None)
    if given == "off":
        return None
    if given is not None:
        return float(given)
    plain = (matrix == DEFAULT_MATRIX.validate(task_names(), check_model, runner_names())
             and not getattr(args, "suite", None) and not getattr(args, "shard", None) and rule == StopRule()
             and getattr(args, "passes", 1) == 1 and not getattr(args, "resume", None))
    return DEFAULT_BUDGET_S if plain else None
