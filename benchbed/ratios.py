"""Records grouped into cells (one point of the matrix, every runner measured there) with each
runner's ratio to the cell's reference runner — the one place tables, reports and summaries get
their ratios from.

Ratios are always recomputed from the raw samples: from the paired blocks when the runners were
timed interleaved (the per-block ratio of medians, bootstrapped over blocks), else from the two
sample sets independently. The same seed gives the same numbers as the record's own ``ref_ratio``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from .measure import ratio_ci
from .measure.paired import paired_ratio_ci
from .spec import DEFAULT_REFERENCE

__all__ = ["Cell", "group_cells", "runner_order"]
#: A superset runner measured below this fraction of its reference (upper CI bound) is suspect.
SUSPECT_BELOW = 0.8
_KEY = ("task", "model", "device", "dtype", "batch_size", "seq_len")


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _reference(rec: dict[str, Any]) -> str:
    ref = rec.get("reference")
    return ref if isinstance(ref, str) and ref else DEFAULT_REFERENCE


@dataclass
class Cell:
    """The records of one cell, by runner, and the runner they are compared with."""

    reference: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def any(self) -> dict[str, Any]:
        return next(iter(self.records.values()))

    @property
    def runners(self) -> list[str]:
        """The reference first, then the others as first seen."""
        rest = [r for r in self.records if r != self.reference]
        return ([self.reference] if self.reference in self.records else []) + rest

    def ok(self, runner: str) -> dict[str, Any] | None:
        rec = self.records.get(runner)
        if rec is None or rec.get("status") != "ok" or rec.get("samples_s") is None:
            return None
        return rec

    def ratio(self, runner: str, seed: int = 0, resamples: int = 2000) -> tuple[float, float, float] | None:
        """(point, low, high) of `runner`'s median ÷ the reference's, or None when either is missing."""
        a, b = self.ok(runner), self.ok(self.reference)
        if a is None or b is None or runner == self.reference:
            return None
        xa, xb = list(a["samples_s"]), list(b["samples_s"])
        ba, bb = a.get("sample_blocks"), b.get("sample_blocks")
        if (_present_list(ba) and _present_list(bb) and len(ba) == len(xa) and len(bb) == len(xb)
                and a.get("pairing") == "interleaved"):
            try:
                return paired_ratio_ci(xa, list(ba), xb, list(bb), seed=seed, resamples=resamples)
            except ValueError:
                pass  # no block in common (pooled from different runs): fall back to independent samples
        return ratio_ci(xa, xb, seed=seed, resamples=resamples)

    @property
    def interfered(self) -> str | None:
        """The interference reason of any record of the cell (its ratios are not to be trusted)."""
        for rec in self.records.values():
            if rec.get("interfered") is True:
                return rec.get("interference") or "the machine was busy"
        return None

    def suspect(self, runner: str, ratio: tuple[float, float, float] | None) -> str | None:
        """Why `runner`'s ratio is physically implausible, or None: a runner that does the
        reference's work and more (`Runner.SUPERSET_OF`), with the same answers, measured far
        faster than it (the upper end of the CI below `SUSPECT_BELOW`)."""
        from .runners import runner_names, get_runner

        if ratio is None or runner not in runner_names():
            return None
        ok, _ = self.parity()
        task = next(iter(self.records.values())).get("task")
        if get_runner(runner, task).SUPERSET_OF == self.reference and ok is not False and ratio[2] < SUSPECT_BELOW:
            return (f"{runner} does {self.reference}'s work and more but measured {ratio[0]:.2f}x of it: suspect "
                    f"(a busy or drifting machine?)")
        return None

    def parity(self) -> tuple[bool | None, str]:
        """(all runners agree with the reference, the first mismatch's detail or the first detail)."""
        verdicts = [(r.get("parity_ok"), r.get("parity_detail") or "") for n, r in self.records.items()
                    if n != self.reference and _present(r.get("parity_ok"))]
        if not verdicts:
            return None, ""
        bad = [d for ok, d in verdicts if not ok]
        return (not bad), (bad[0] if bad else verdicts[0][1])


def _present_list(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and len(value) > 0


def _cell_key(rec: dict[str, Any]) -> tuple:
    # pair_id names the cell exactly (every parameter but the runner, variants included)
    return (rec["pair_id"],) if isinstance(rec.get("pair_id"), str) else tuple(rec[k] for k in _KEY)


def group_cells(records: Iterable[dict[str, Any]]) -> list[Cell]:
    """Records grouped by run and cell, in first-seen order (records of one case should be pooled first)."""
    cells: dict[tuple, Cell] = {}
    for rec in records:
        key = (rec.get("run_id"),) + _cell_key(rec)
        cell = cells.setdefault(key, Cell(_reference(rec)))
        cell.records.setdefault(rec["runner"], rec)
    return list(cells.values())


def runner_order(cells: Iterable[Cell]) -> tuple[str, list[str]]:
    """(the reference, every runner in display order) over many cells."""
    cells = list(cells)
    refs = [c.reference for c in cells]
    reference = max(set(refs), key=refs.count) if refs else DEFAULT_REFERENCE
    order = [reference]
    for c in cells:
        order += [r for r in c.runners if r not in order]
    return reference, order
