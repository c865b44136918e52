"""``benchbed bisect``: from "this cell changed" to the release or commit that changed it.

One cell (the run options select it: exactly one case, one runner) is measured at the candidate
and at the good end, in two environments, interleaved in one window, each step decided by the
gate's rule (`benchbed.regress.bisect`). Points are package releases (``--package NAME --good V1
--bad V2``, the versions between from ``--find-links`` folders, else the package index) or commits
(``--repo PATH --good REV --bad REV``, each installed from ``git+file://PATH@SHA`` into a cached
environment). Every step's records go into one run under ``--results``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

from ..atomic import write_text_atomic
from ..display import clip
from ..spec import SpecError
from ..validate import arg, output_file, positive_float, positive_int
from .common import EXIT_OK, EXIT_UNJUDGED, out

__all__ = ["add_parser", "main", "release_points", "commit_points"]


def add_parser(sub: Any) -> None:
    from .run import add_run_options

    p = sub.add_parser("bisect", help="find the release or commit that changed one cell (paired, gate-decided)",
                       description="Bisect one cell (select it with the run options: one case, one runner) over "
                                   "package releases (--package NAME --good V1 --bad V2) or commits (--repo PATH "
                                   "--good REV --bad REV). Each step measures the candidate against the good end "
                                   "in two environments, interleaved in one window, and is decided by the gate's "
                                   "rule; an undecided step is measured again (--max-rounds), and bisect stops "
                                   "rather than guess. Exit 0: culprit found; 3: no culprit (no change, "
                                   "undecided, or only a range); 2: bad input.")
    add_run_options(p)
    b = p.add_argument_group("bisection")
    what = b.add_mutually_exclusive_group(required=True)
    what.add_argument("--package", metavar="NAME", help="bisect the releases of this package")
    what.add_argument("--repo", metavar="PATH", help="bisect the commits of this git repository (an installable "
                                                     "package)")
    b.add_argument("--case", metavar="CASE_ID", help="the cell of this case id in --from (instead of the axis "
                                                     "options): what history names in a change point")
    b.add_argument("--from", dest="from_results", metavar="RESULTS", help="results folder holding --case")
    b.add_argument("--good", required=True, metavar="V", help="a version (or commit) without the change")
    b.add_argument("--bad", required=True, metavar="V", help="a version (or commit) with it")
    b.add_argument("--threshold", type=arg(positive_float, "--threshold"), default=0.03, metavar="FRACTION",
                   help="the smallest change that counts (default: 0.03, the ratio gate's)")
    b.add_argument("--max-rounds", type=arg(positive_int, "--max-rounds"), default=3, metavar="N",
                   help="measurements of an undecided step before bisect stops (default: 3)")
    b.add_argument("--json", metavar="FILE", type=arg(output_file, "--json"), help="write the outcome as JSON")


# -- the points ---------------------------------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _link_versions(package: str, folders: list[str]) -> set[str]:
    """Versions of `package` among the wheels and sdists in `folders` (file names only)."""
    from packaging.version import InvalidVersion, Version

    found = set()
    want = _norm(package)
    for folder in folders:
        if not os.path.isdir(folder):
            raise SpecError(f"--find-links {folder!r} is not a folder")
        for f in os.listdir(folder):
            m = re.match(r"^(.+?)-(\d[^-]*?)(?:-[^-]+-[^-]+-[^-]+\.whl|\.tar\.gz|\.zip)$", f)
            if m and _norm(m.group(1)) == want:
                try:
                    Version(m.group(2))
                    found.add(m.group(2))
                except InvalidVersion:
                    continue
    return found


def _index_versions(package: str) -> set[str]:
    p = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package, "--disable-pip-version-check"],
                       capture_output=True, text=True)
    m = re.search(r"Available versions:\s*(.+)", p.stdout)
    if p.returncode != 0 or not m:
        raise SpecError(f"--package {package!r}: the package index has no such package "
                        f"({' '.join((p.stderr or p.stdout).split())[:200] or 'no versions'})")
    return {v.strip() for v in m.group(1).split(",") if v.strip()}


def release_points(package: str, good: str, bad: str, find_links: list[str], no_index: bool) -> list[str]:
    """The versions from `good` to `bad` (either order), both included, oldest change first."""
    from packaging.version import InvalidVersion, Version

    versions = _link_versions(package, find_links)
    if not no_index:
        versions |= _index_versions(package)
    if not versions:
        raise SpecError(f"--package {package!r}: no versions found in {', '.join(find_links) or 'the index'}")
    try:
        g, b = Version(good), Version(bad)
    except InvalidVersion as exc:
        raise SpecError(f"--good/--bad must be versions of {package}: {exc}") from None
    if g == b:
        raise SpecError(f"--good and --bad are the same version ({good}): nothing to bisect")
    known = sorted(versions, key=Version)
    for end, name in ((good, "--good"), (bad, "--bad")):
        if Version(end) not in {Version(v) for v in known}:
            raise SpecError(f"{name} {end}: {package} has no such version (valid: {', '.join(known)})")
    lo, hi = min(g, b), max(g, b)
    between = [v for v in known if lo <= Version(v) <= hi]
    return between if g < b else between[::-1]


def commit_points(repo: str, good: str, bad: str) -> list[str]:
    """The commits from `good` to `bad` on the ancestry path, both included, as full SHAs."""
    def git(*a: str) -> str:
        p = subprocess.run(["git", "-C", repo, *a], capture_output=True, text=True)
        if p.returncode != 0:
            raise SpecError(f"--repo {clip(repo, 200)!r}: git {clip(' '.join(a), 200)}: "
                            f"{clip(' '.join(p.stderr.split()), 200) or f'exit {p.returncode}'}")
        return p.stdout.strip()

    def commit(flag: str, rev: str) -> str:
        p = subprocess.run(["git", "-C", repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
        if p.returncode != 0 or not p.stdout.strip():
            raise SpecError(f"{flag} {clip(rev, 80)!r} is not a commit of {clip(repo, 200)!r}")
        return p.stdout.strip()

    if not os.path.isdir(repo):
        raise SpecError(f"--repo {clip(repo, 200)!r} is not a folder")
    g, b = commit("--good", good), commit("--bad", bad)
    if g == b:
        raise SpecError(f"--good and --bad are the same commit ({g[:12]}): nothing to bisect")
    if subprocess.run(["git", "-C", repo, "merge-base", "--is-ancestor", g, b]).returncode != 0:
        raise SpecError(f"--good {good} is not an ancestor of --bad {bad}")
    return [g] + git("rev-list", "--ancestry-path", "--reverse", f"{g}..{b}").split()


def select_case(args: argparse.Namespace) -> None:
    """Set the axis options to the cell of ``--case`` as its newest record in ``--from`` has it
    (give the run's ``--suite`` too when its runners or tasks are plugins it registers)."""
    import math

    from ..envs import split_runner
    from .common import load

    if not (args.case and args.from_results):
        raise SpecError("--case and --from go together: the case id, and the results folder that holds it")
    df = load([args.from_results], "--from")
    rows = df[df["case_id"] == args.case]
    if rows.empty:
        near = sorted(df["case_id"].dropna().unique())[:5]
        raise SpecError(f"--case {args.case}: no record in {args.from_results} (case ids there: "
                        f"{', '.join(near)}{'...' if df['case_id'].nunique() > 5 else ''})")
    rec = rows.sort_values("started_at").iloc[-1].to_dict()

    def given(v: Any) -> bool:
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    args.task, args.model = [rec["task"]], [rec["model"]]
    args.runner, args.device, args.dtype = [split_runner(rec["runner"])[0]], [rec["device"]], [rec["dtype"]]
    args.batch_size, args.seq_len = [str(int(rec["batch_size"]))], [str(int(rec["seq_len"]))]
    if given(rec.get("attn_impl")) and hasattr(args, "attn_impl"):
        args.attn_impl = [str(rec["attn_impl"])]
    if hasattr(args, "compiled"):
        args.compiled = [str(bool(rec.get("compiled")) if given(rec.get("compiled")) else False).lower()]
    # the suite stays: a runner or task it registers must load; the axes above narrow it to the cell


# -- the steps ----------------------------------------------------------------------------------------

def _env_spec(args: argparse.Namespace, point: str) -> Any:
    from ..envs import EnvSpec

    if args.package:
        return EnvSpec(_label(args, point), (f"{args.package}=={point}",))
    url = f"git+file://{os.path.abspath(args.repo)}@{point}"
    return EnvSpec(_label(args, point), (url,), install_args=("--no-build-isolation",))


def _label(args: argparse.Namespace, point: str) -> str:
    return point if args.package else point[:12]


def _explain_culprit(session: Any, case: Any, labels: list[str], culprit: int, env_of: Any, pass_index: int) -> list[Any]:
    """``--explain``: the culprit against the point before it, timed as a pair and profiled in their
    environments' workers; why the culprit is slower."""
    from ..engine import derive
    from ..explain import explain_records

    good = next((j for j in range(culprit - 1, -1, -1) if env_of(j) is not None), None)  # around broken points
    before, bad = (env_of(good) if good is not None else None), env_of(culprit)
    if before is None or bad is None:
        return []
    ref, other = f"{case.runner}@{labels[good]}", f"{case.runner}@{labels[culprit]}"
    print(f"benchbed bisect: explaining {labels[culprit]} against {labels[good]}", file=sys.stderr)
    step = derive(session, envs=(before, bad), reference=ref, explain="all")
    results = step.run([replace(case, runner=ref), replace(case, runner=other)], passes=[pass_index])
    return explain_records([{**r.record, "pass_index": 0} for r in results])


def main(args: argparse.Namespace) -> int:
    from ..engine import Session, derive
    from ..envs import build_env, split_runner
    from ..regress.bisect import bisect
    from .plan import make_plan

    if args.env:
        raise SpecError("bisect builds its own environments; --env is not taken here")
    if args.case or args.from_results:
        select_case(args)
    plan = make_plan(args)
    if len(plan.cases) != 1:
        listed = "; ".join(c.label for c in plan.cases[:8])
        raise SpecError(f"bisect measures one cell with one runner; the options select {len(plan.cases)} cases "
                        f"({listed}{'...' if len(plan.cases) > 8 else ''}): narrow with --task, --model, --runner, "
                        f"--dtype, --batch-size, --seq-len")
    case = plan.cases[0]
    if split_runner(case.runner)[1] is not None:
        raise SpecError(f"--runner {case.runner}: bisect places the runner in its own environments; give it plain")
    find_links = list(args.find_links or [])
    points = (release_points(args.package, args.good, args.bad, find_links, args.no_index) if args.package
              else commit_points(args.repo, args.good, args.bad))
    labels = [_label(args, p) for p in points]
    what = args.package or os.path.basename(os.path.abspath(args.repo))
    print(f"benchbed bisect: {what} {labels[0]} (good) .. {labels[-1]} (bad): {len(points)} points; "
          f"{case.runner} on {case.task} {case.model} {case.device} {case.dtype} b{case.batch_size} s{case.seq_len}",
          file=sys.stderr)
    session = Session(args.results, plan.config, run_id=plan.run_id)
    envs: dict[int, Any] = {}
    errors: dict[int, str] = {}
    rounds = [0]  # each measurement is its own pass of the run (a point measured twice keeps both)
    start = time.perf_counter()

    def env_of(i: int) -> Any:
        if i not in envs and i not in errors:
            try:
                envs[i] = build_env(_env_spec(args, points[i]), tuple(find_links), args.no_index,
                                    progress=lambda line: print(f"benchbed: {line}", file=sys.stderr))
            except SpecError as exc:
                errors[i] = str(exc)
        return envs.get(i)

    def measure(i: int, earlier: list[float]) -> Any:
        good, cand = env_of(0), env_of(i)
        if cand is None:
            return errors[i]
        if good is None:
            raise SpecError(f"the good end {labels[0]} cannot be installed: {errors[0]}")
        ref, other = f"{case.runner}@{labels[0]}", f"{case.runner}@{labels[i]}"
        step = derive(session, **{"envs": (good, cand), "reference": ref, "explain": "off"})
        t0 = time.perf_counter()
        results = step.run([replace(case, runner=ref), replace(case, runner=other)], passes=[rounds[0]])
        rounds[0] += 1
        rec = next(r.record for r in results if r.case.runner == other)
        if rec["status"] != "ok":
            return f"{rec['status']}: {rec.get('message')}"
        if rec.get("parity_ok") is False:
            print(f"  note: {labels[i]} gives other answers than {labels[0]}: {rec.get('parity_detail')}",
                  file=sys.stderr)
        ratios = list(rec.get("ratio_samples") or [])
        print(f"  {labels[i]} vs {labels[0]}: ratio {rec['ref_ratio']:.3f} [{rec['ref_ratio_low']:.3f}, "
              f"{rec['ref_ratio_high']:.3f}] over {len(ratios)} blocks ({time.perf_counter() - t0:.0f}s)"
              + ("  INTERFERED" if rec.get("interfered") else ""), file=sys.stderr)
        return ratios

    explained: list[Any] = []
    try:
        result = bisect(labels, measure, threshold=args.threshold, max_rounds=args.max_rounds, seed=args.seed)
        if result.culprit and args.explain != "off":
            explained = _explain_culprit(session, case, labels, labels.index(result.culprit), env_of, rounds[0])
    finally:
        session.close()
    elapsed = time.perf_counter() - start
    for s in result.steps:
        p = s.point
        figure = f"ratio {p.ratio:.3f} [{p.low:.3f}, {p.high:.3f}], {p.blocks} blocks" if p else s.note[:200]
        out(f"step {labels.index(s.label) + 1:>2}/{len(labels)}  {s.label:<14} {s.verdict:<10} {figure}"
            f"  ({s.rounds} round{'s' if s.rounds != 1 else ''})")
    if result.culprit:
        end = result.steps[0].point
        out(f"first {'bad' if result.direction > 0 else 'changed'} {'version' if args.package else 'commit'}: "
            f"{result.culprit} — a {result.kind}: {labels[-1]} is {end.ratio:.2f}x {labels[0]} "
            f"[{end.low:.2f}, {end.high:.2f}]; {len(result.steps)} steps in {elapsed:.0f}s")
    else:
        out(f"no culprit: {result.reason} ({len(result.steps)} steps in {elapsed:.0f}s)")
    for e in explained:
        from ..explain import explanation_lines

        out("\n".join(explanation_lines(e)))
    run_dir = str(session.store.run_dir)
    written = "://" in run_dir or os.path.isdir(run_dir)
    out(f"records in {run_dir}" if written else "no records written (nothing was measured)")
    if args.json:
        write_text_atomic(args.json, json.dumps({
            "what": what, "points": labels, "culprit": result.culprit, "candidates": result.candidates,
            "direction": result.kind, "reason": result.reason, "seconds": elapsed, "run": run_dir if written else None,
            "explanations": [e.as_dict() for e in explained],
            "steps": [{"point": s.label, "verdict": s.verdict, "rounds": s.rounds, "note": s.note,
                       **({"ratio": s.point.ratio, "low": s.point.low, "high": s.point.high, "blocks": s.point.blocks}
                          if s.point else {})} for s in result.steps]}, indent=1) + "\n")
    return EXIT_OK if result.culprit else EXIT_UNJUDGED
