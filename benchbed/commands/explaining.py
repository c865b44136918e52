"""``--explain`` for the doors that flag changes (`compare`, `history`): each regression taken
apart from the profiles its records carry (``run --explain``): the same runner in the run before
the change and in the run after it; where only the current run has profiles, the runner against
its reference in that run. Records without profiles say how to get them."""

from __future__ import annotations

from typing import Any, Iterable

from ..explain import clean_record

__all__ = ["explain_flagged", "explanation_block"]


def _record(df: Any, case_key: str, run_id: str | None = None) -> dict[str, Any] | None:
    """The newest record (first pass) of the case `case_key` names, in run `run_id` if given."""
    if df is None or df.empty:
        return None
    ids = df["case_id"].astype(str)
    hit = df[(ids == case_key) | ids.map(lambda c: case_key.startswith(c + "|") or case_key.startswith(c + "@"))]
    if run_id is not None:
        hit = hit[hit["run_id"] == run_id]
    if "pass_index" in hit.columns:
        hit = hit[hit["pass_index"].fillna(0) == 0]
    if hit.empty:
        return None
    return clean_record(hit.sort_values("started_at").iloc[-1].to_dict())


def explain_flagged(flagged: Iterable[dict[str, Any]], before: Any, after: Any) -> list[Any]:
    """One explanation per flagged case (``case_id``, optional ``run_id`` of the run after the change,
    ``before_run_id``, ``change_ci_low`` / ``_high``): the run after the change against the run before."""
    from ..explain import Explanation, explain_change, explain_pair

    out = []
    for f in flagged:
        cur = _record(after, f["case_id"], f.get("run_id"))
        base = _record(before, f["case_id"], f.get("before_run_id"))
        if cur is None:
            continue
        if base is not None and cur.get("profile_json") and base.get("profile_json"):
            lo, hi = f.get("change_ci_low"), f.get("change_ci_high")
            out.append(explain_change(cur, base, None if lo is None else 1 + lo, None if hi is None else 1 + hi))
            continue
        ref = None
        if cur.get("reference") and cur.get("reference") != cur.get("runner"):
            same = after[(after["run_id"] == cur["run_id"]) & (after["pair_id"] == cur.get("pair_id"))
                         & (after["runner"] == cur["reference"])]
            ref = clean_record(same.iloc[0].to_dict()) if len(same) else None
        if ref is not None:
            out.append(explain_pair(cur, ref))
        elif base is not None:
            out.append(explain_change(cur, base, None, None))  # says which side has no profile
        else:
            out.append(Explanation(runner=str(cur.get("runner")), reference="(no baseline)", cell=str(f["case_id"]),
                                   verdict="refused", reason="no record of this case before the change"))
    return out


def explanation_block(explained: list[Any], data: dict[str, Any], console: str, markdown: str) -> tuple[str, str]:
    """`data` given its ``explanations``; (the console text, the markdown) with them appended."""
    from ..explain import explanation_lines

    data["explanations"] = [e.as_dict() for e in explained]
    if not explained:
        return console, markdown
    text = "\n\n".join("\n".join(explanation_lines(e)) for e in explained)
    return f"{console}\n\n{text}", f"{markdown}\n\n**Why** (benchbed explain)\n\n```\n{text}\n```\n"
