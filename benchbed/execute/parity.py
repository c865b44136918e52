"""Parity: every runner's outputs against the reference runner's, on the same inputs, before any
timing (a runner that answers differently is measured, and its record says PARITY MISMATCH)."""

from __future__ import annotations

from typing import Any, Callable

from ..runners.failures import classify
from ..spec import Case
from ..tasks.base import relabel

__all__ = ["check_parity"]


def check_parity(cell: Any, task: Any, runners: dict[str, Any], build_reference: Callable[[Case], Any],
                 reference: str) -> set[str]:
    """Every runner's outputs against the reference runner's, on the same inputs; the reference is
    built for the check alone (`build_reference`) when the cell does not measure it. Returns the
    runners of `runners` it called (each call is a warm-up call the timing need not repeat)."""
    called: set[str] = set()
    ref_run = runners.get(reference)
    if ref_run is None and any(n != reference for n in runners):
        case = next(iter(cell.cases.values())).pair(reference)
        try:
            ref_run = build_reference(case)
        except Exception as exc:
            note = f"not checked: reference runner {reference} failed ({classify(exc)[1][:200]})"
            for name in runners:
                cell.recs[name]["parity_detail"] = note
            return called
    if ref_run is None:
        for name in runners:
            cell.recs[name]["parity_detail"] = f"not checked: reference runner {reference} cannot serve this case"
        return called
    driver = cell.driver
    try:
        expected = driver.reference_outputs(ref_run)
    except Exception as exc:
        if reference in cell.recs:
            cell.fail(reference, exc)
        for name in runners:
            cell.recs[name]["parity_detail"] = f"not checked: reference runner {reference} failed"
        return called
    if reference in runners:
        called.add(reference)
    others = [n for n in runners if n != reference]
    checked = others + ([reference] if driver.checks_reference and reference in runners else [])
    if reference in cell.recs:
        skipped = [n for n in cell.recs if n != reference and n not in runners]
        cell.recs[reference]["parity_detail"] = (
            f"reference runner (compared with: {', '.join(others)})" if others
            else f"not checked: {', '.join(skipped)} could not run ({cell.recs[skipped[0]]['message']})" if skipped
            else "reference runner")
    for name in checked:
        try:
            mine = _expected_for(driver, ref_run, runners[name], expected)
            answers = driver.outputs(runners[name])
            called.add(name)
            verdict = task.compare(mine, answers, cell.recs[name]["dtype"])
        except Exception as exc:
            cell.fail(name, exc)
            continue
        detail = relabel(verdict.detail, name, reference)
        if driver.checks_reference:  # answers as served, against the reference's direct outputs
            detail = f"served vs {reference} direct: {detail}"
        cell.recs[name].update(parity_ok=verdict.ok, parity_detail=detail)
        if not verdict.ok:
            cell.recs[name]["message"] = f"PARITY MISMATCH: {detail}"
    return called


def _expected_for(driver: Any, ref_run: Any, run: Any, expected: list[Any]) -> list[Any]:
    """The reference's outputs for what `run` is really given: a runner whose service rewrites its
    inputs (a chat API's template) says so with ``reference_inputs``, and the reference answers
    those; every other runner is compared with `expected`."""
    view = getattr(run, "reference_inputs", None)
    if view is None or view(list(getattr(ref_run, "inputs", None) or [])) is None:
        return expected
    return driver.reference_outputs(ref_run, view)
