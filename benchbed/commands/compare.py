"""``benchbed compare``: two sets of runs case by case; the regression gate."""

from __future__ import annotations

import argparse
from typing import Any

from ..spec import SpecError
from ..validate import arg, positive_int
from .common import emit, gate, load, regress_options, set_aside, thresholds

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    cmp = sub.add_parser("compare", help="compare two runs case by case; exit 1 on a regression",
                         description="Per case: relative change of the latency statistic with a bootstrap 95% CI "
                                     "and a Mann-Whitney U test on the raw samples. A regression needs a change above "
                                     "the threshold that is significant. With one RESULTS folder, its newest run is "
                                     "compared with the run before it. Exit 1 on any regression; 3 when a case could not be judged or none "
                                     "is in common (the gate fails closed); 0 otherwise; 2 on "
                                     "bad input.")
    cmp.add_argument("baseline", metavar="BASELINE", help="baseline results (folder, parquet file or URI); alone: a "
                                                          "folder whose newest run is compared with the one before")
    cmp.add_argument("current", metavar="CURRENT", nargs="?", help="current results")
    cmp.add_argument("--baseline-runs", type=arg(positive_int, "--baseline-runs"), default=5, metavar="N",
                     help="with one RESULTS folder: how many earlier comparable runs form the baseline (default: 5; "
                          "with 3 or more, a regression must also lie outside the prediction interval of their medians, "
                          "i.e. beyond what the baseline's own runs vary by)")
    cmp.add_argument("--allow-env-change", action="store_true",
                     help="compare even when hardware or library versions differ (the differences are named)")
    regress_options(cmp)
    cmp.add_argument("--explain", action="store_true",
                     help="take each regression apart from the profiles its records carry (run --explain): the "
                          "current run's record against the baseline's, stage by stage, function by function")
    cmp.add_argument("--require-power", action="store_true",
                     help="exit 3 when a case is underpowered: its minimum detectable change at 95%% power, from the "
                          "baseline's own spread, exceeds its threshold (default: named, exit 0 — compare is the "
                          "door for looking at two runs; the nightly gate is `history`, where an underpowered case "
                          "is not judged unless --allow-underpowered)")



def main(args: argparse.Namespace) -> int:
    from ..regress import CompareSettings, compare_runs, newest_against_earlier
    from ..regress.output import (
        comparison_console,
        comparison_dict,
        comparison_markdown,
    )

    settings = CompareSettings(metric=args.metric, thresholds=thresholds(args), alpha=args.alpha,
                               allow_env_change=args.allow_env_change, normalize=args.normalize)
    if args.current:
        baseline, current = load([args.baseline], "baseline", gate=True), load([args.current], "current", gate=True)
        aside = set_aside(baseline) + set_aside(current)
    else:
        everything = load([args.baseline], "results", gate=True)
        aside = set_aside(everything)
        baseline, current = newest_against_earlier(everything, args.baseline_runs)
        if baseline is None:
            raise SpecError(f"{args.baseline!r} holds 1 run; compare needs two (or pass CURRENT)")
    result = compare_runs(baseline, current, settings)
    data = comparison_dict(result)
    console, markdown = comparison_console(data), comparison_markdown(data)
    if args.explain and result.regressions:
        from .explaining import explain_flagged, explanation_block

        rows = result.cases[result.cases["verdict"] == "regression"].to_dict("records")
        console, markdown = explanation_block(explain_flagged(rows, baseline, current), data, console, markdown)
    emit(args, data, console, markdown)
    return gate(result.regressions, result.unjudged + aside, result.judged,
                result.underpowered if args.require_power else 0)


