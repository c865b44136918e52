"""``benchbed history``: confirmed change points over each case's nightly series."""

from __future__ import annotations

import argparse
from typing import Any

from ..validate import arg, positive_int
from .common import emit, gate, load, regress_options, set_aside, thresholds

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    hist = sub.add_parser("history", help="find confirmed change points in each case's nightly series; exit 1 on a "
                                          "new regression",
                          description="Change points per case over all runs in RESULTS (ruptures PELT on log "
                                      "medians), confirmed only when the shift holds for two consecutive runs, "
                                      "exceeds the threshold and is significant. Exit 1 when a confirmed regression "
                                      "starts within the newest --window runs; 3 when a case of those runs could not be "
                                      "judged (unusable samples, no finished record, interference, missing from "
                                      "the newest run, underpowered: its runs spread too much to confirm a change "
                                      "of its threshold, unless --allow-underpowered), when there are fewer than 4 "
                                      "runs, or no run has usable records; 0 otherwise; 2 on bad input.")
    hist.add_argument("results", nargs="+", metavar="RESULTS", help="results folders, files or URIs")
    hist.add_argument("--window", type=arg(positive_int, "--window"), default=2,
                      help="gate on regressions starting in the newest N runs (default: 2: the one confirmed "
                           "by tonight's run)")
    regress_options(hist)
    hist.add_argument("--explain", action="store_true",
                      help="take each regression apart from the profiles its records carry (run --explain): the "
                           "run after the change against the run before it (the nightly summary gets it with "
                           "--markdown)")
    hist.add_argument("--allow-underpowered", action="store_true",
                      help="exit 0 although a case is underpowered (still named). By default an underpowered case "
                           "is not judged (exit 3): the runs before the window spread so much that a change of its "
                           "threshold could not have been confirmed, so a pass could not have failed")



#: runs a history needs before it can confirm anything (two on each side of a change)
MIN_HISTORY = 4


def main(args: argparse.Namespace) -> int:
    from ..regress.history import HistorySettings, find_change_points, underpowered_cases, unjudged_cases
    from ..regress.output import history_console, history_dict, history_markdown

    settings = HistorySettings(thresholds=thresholds(args), alpha=args.alpha, normalize=args.normalize,
                               metric=args.metric)
    df = load(args.results, "results", gate=True)
    points, envs, runs = find_change_points(df, settings)
    gating = [p for p in points if p.kind == "regression" and p.index >= len(runs) - args.window]
    unjudged = unjudged_cases(df, args.window, args.normalize, args.metric)
    named = {u["case_id"] for u in unjudged}
    weak = [u for u in underpowered_cases(df, settings, args.window, points) if u["case_id"] not in named]
    if len(runs) < MIN_HISTORY:
        unjudged = unjudged + [{"case_id": "*", "label": "every case", "run_id": runs[-1] if runs else "-",
                                "reason": f"{len(runs)} run(s): the history confirms a change over 2 runs on each "
                                          f"side, so it needs {MIN_HISTORY} or more"}]
    elif not args.allow_underpowered:
        unjudged = unjudged + weak
    data = history_dict(points, gating, envs, runs, int(df["case_id"].nunique()), unjudged, args.metric)
    if args.allow_underpowered and weak:
        data["underpowered_allowed"] = weak
    console, markdown = history_console(data), history_markdown(data)
    if args.explain and gating:
        from .explaining import explain_flagged, explanation_block

        flagged = [{"case_id": p.case_id, "run_id": runs[p.index], "before_run_id": runs[p.index - 1]}
                   for p in gating if p.index >= 1]
        console, markdown = explanation_block(explain_flagged(flagged, df, df), data, console, markdown)
    emit(args, data, console, markdown)
    return gate(len(gating), len(unjudged) + set_aside(df), len(runs))


