"""The measured gap between a runner and its reference, taken apart (pure functions over two
records with profiles, schema 13's ``profile_json``).

1. The gap is the *timed* one: (ratio - 1) x the reference's median, per call, from the paired
   timing; profiled times never stand in for it.
2. Stages: each runner's stage clock times (an unprofiled pass) are scaled so they add up to that
   runner's timed median; the stages' differences then add up to the gap exactly.
3. Functions: within a stage, each runner's sampled function times are scaled to the stage's
   scaled time (stage by stage, so the sampler's overhead, which differs between stages, is not
   spread); a function is *named* when its difference is at least `NAME_FRACTION` of the gap
   (and `NAME_FLOOR` of the reference's call). Profiles with call stacks are named by `rollup`:
   small differences roll up to their callers, and sampling noise is not named. Whatever the named
   functions do not account for is ``unexplained``: shown, never spread over the rest.
4. Operators: the same, keyed by name and input shapes; an operator one runner runs and the other
   does not is listed as such (``only_in``).

A gap whose CI includes 1, or comes within `CI_CLEARANCE` of it, names nothing (it is noise), and
records measured on a busy machine are not attributed (``refused``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from .rollup import roll_up

__all__ = ["Explanation", "Part", "OperatorDelta", "clean_record", "explain_pair", "explain_change", "explain_records", "NAME_FRACTION",
           "NAME_FLOOR"]

#: A function is named when it moved by at least this fraction of the gap...
NAME_FRACTION = 0.03
#: ...and by at least this fraction of the reference's call (so noise in a tiny gap names nothing).
NAME_FLOOR = 0.005
#: Named functions per stage, at most (the largest first); a waterfall shows this many a stage and
#: sums the rest (`Explanation.shown_parts`).
NAMED_PER_STAGE = 8
#: A gap smaller than this fraction of the reference's call names nothing: below what the timing
#: resolves by default (the --ratio-ci target: a twin of the reference can measure 1-2% apart).
MIN_GAP = 0.02
#: ...and a gap whose 95% CI comes within this of 1 names nothing either: an A/A twin's CI
#: excludes 1 one time in twenty, and then names noise (a CI run found a twin "explained" by eight
#: 30 µs differences); clearing 1 by 1% makes that about one in two thousand at a ±1.5% CI.
CI_CLEARANCE = 0.01
#: Operators listed, at most.
OPERATORS_LISTED = 12
STAGES = ("preprocess", "forward", "postprocess", "other")


@dataclass(frozen=True)
class Part:
    """A named function's share of the gap: its seconds per call in each runner (scaled to the
    timed medians) and the difference."""

    stage: str
    name: str
    delta_s: float
    runner_s: float
    reference_s: float
    #: distinct functions it called whose differences were too small to name, rolled into it
    callees: int = 0

    @property
    def label(self) -> str:
        return self.name + (f" (and {self.callees} smaller calls)" if self.callees else "")


@dataclass(frozen=True)
class OperatorDelta:
    """An operator (name and input shapes) whose own time differs; `only_in` names the runner
    that alone runs it."""

    stage: str
    name: str
    shapes: str
    delta_s: float
    runner_s: float
    reference_s: float
    only_in: str | None = None


@dataclass(frozen=True)
class Explanation:
    """The gap between `runner` and `reference` in one cell, taken apart."""

    runner: str
    reference: str
    cell: str
    #: ``explained``: parts named; ``no gap``: the ratio's CI includes 1 (or nearly), nothing named;
    #: ``refused``: not attributed (`reason` says why: no profile, a busy machine...).
    verdict: str
    reason: str | None = None
    gap_s: float | None = None
    ratio: float | None = None
    ratio_low: float | None = None
    ratio_high: float | None = None
    reference_median_s: float | None = None
    stages: tuple[tuple[str, float], ...] = ()
    parts: tuple[Part, ...] = ()
    unexplained_s: float | None = None
    operators: tuple[OperatorDelta, ...] = ()
    #: per runner: the sampling profile's seconds per call ÷ its timed median
    overhead: dict[str, float] = field(default_factory=dict)
    #: per runner, on a GPU: kernel busy time and launch gaps in its profiled calls
    #: (`measure.device_trace.device_timeline`; host-bound or device-bound)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)

    def shown_parts(self, per_stage: int = NAMED_PER_STAGE) -> list[tuple[str, str, float]]:
        """(stage, label, seconds) for a waterfall: each stage's largest named parts, then the rest
        of its named parts summed as one line, so the lines still add up with ``unexplained``."""
        out: list[tuple[str, str, float]] = []
        for stage in STAGES:
            mine = sorted((p for p in self.parts if p.stage == stage), key=lambda p: -abs(p.delta_s))
            out.extend((stage, p.label, p.delta_s) for p in mine[:per_stage])
            if len(mine) > per_stage:
                rest = mine[per_stage:]
                out.append((stage, f"{len(rest)} more named functions", sum(p.delta_s for p in rest)))
        return out

    @property
    def unexplained_fraction(self) -> float | None:
        if self.unexplained_s is None or not self.gap_s:
            return None
        return abs(self.unexplained_s) / abs(self.gap_s)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stages"] = [{"stage": s, "delta_s": d} for s, d in self.stages]
        out["unexplained_fraction"] = self.unexplained_fraction
        return out


def clean_record(rec: dict[str, Any]) -> dict[str, Any]:
    """A record as pandas hands it back, with its missing values (NaN) as None: a NaN is truthy, so
    ``rec.get("explain_status") or ...`` would read a missing value as present."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}


def _cell_name(rec: dict[str, Any]) -> str:
    parts = [rec.get("task"), rec.get("model"), rec.get("device"), rec.get("dtype"),
             f"b{rec.get('batch_size')}", f"s{rec.get('seq_len')}"]
    return " ".join(str(p) for p in parts if p is not None)


def _profile(rec: dict[str, Any]) -> dict[str, Any] | None:
    text = rec.get("profile_json")
    if not isinstance(text, str) or not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("version") == 1 else None


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def _scaled_stages(profile: dict[str, Any], median_s: float) -> dict[str, float]:
    clock = {s: float(profile["stage_clock_s"].get(s, 0.0)) for s in STAGES}
    total = sum(clock.values())
    k = median_s / total if total > 0 else 0.0
    return {s: v * k for s, v in clock.items()}


def _scaled_view(view: dict[str, Any], stages: dict[str, float], rows: dict[str, dict[str, float]]
                 ) -> dict[tuple[str, str], float]:
    """Each row's seconds scaled so a stage's rows add up to the stage's scaled time."""
    out = {}
    for stage, items in rows.items():
        profiled = float(view["stage_s"].get(stage, 0.0))
        k = stages.get(stage, 0.0) / profiled if profiled > 0 else 0.0
        for name, s in items.items():
            out[(stage, name)] = float(s) * k
    return out


def _operator_rows(ops: dict[str, Any]) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    for stage, name, shapes, cpu, dev, _count in ops.get("operators", []):
        key = f"{name}\t{shapes}"
        rows.setdefault(stage, {})[key] = rows.get(stage, {}).get(key, 0.0) + float(cpu) + float(dev)
    return rows


def explain_pair(rec: dict[str, Any], ref: dict[str, Any]) -> Explanation:
    """`rec`'s gap to `ref` (its reference's record of the same cell and pass), taken apart."""
    base = dict(runner=str(rec.get("runner")), reference=str(ref.get("runner")), cell=_cell_name(rec))
    ratio, low, high = (_num(rec.get(k)) for k in ("ref_ratio", "ref_ratio_low", "ref_ratio_high"))
    ref_median = _num(ref.get("lat_median_s"))
    if ratio is None or ref_median is None:
        return Explanation(**base, verdict="refused", reason="no timed ratio to explain (the runner or its "
                                                             "reference did not finish)")
    gap = (ratio - 1.0) * ref_median
    base.update(gap_s=gap, ratio=ratio, ratio_low=low, ratio_high=high, reference_median_s=ref_median)
    busy = [r for r in (rec, ref) if r.get("interfered") is True]
    if busy:
        return Explanation(**base, verdict="refused", reason=f"measured on a busy machine ({busy[0].get('interference') or 'interfered'}): "
                                                             "not attributed; measure it again on a quiet one")
    profiles = {}
    for r in (rec, ref):
        p = _profile(r)
        if p is None:
            why = r.get("explain_message") or "run it with --explain, or benchbed explain"
            return Explanation(**base, verdict="refused", reason=f"{r.get('runner')} has no profile ({why})")
        profiles[r is rec] = p
    mine, theirs = profiles[True], profiles[False]
    stages_r = _scaled_stages(mine, ratio * ref_median)
    stages_ref = _scaled_stages(theirs, ref_median)
    stage_deltas = tuple((s, stages_r[s] - stages_ref[s]) for s in STAGES)
    overhead = {base["runner"]: mine["python"]["wall_s"] / (ratio * ref_median),
                base["reference"]: theirs["python"]["wall_s"] / ref_median}
    f_r = _scaled_view(mine["python"], stages_r, mine["python"]["functions"])
    f_ref = _scaled_view(theirs["python"], stages_ref, theirs["python"]["functions"])
    o_r = _scaled_view(mine["operators"], stages_r, _operator_rows(mine["operators"]))
    o_ref = _scaled_view(theirs["operators"], stages_ref, _operator_rows(theirs["operators"]))
    operators = _operator_deltas(o_r, o_ref, base["runner"], base["reference"])
    no_gap = (low is not None and high is not None
              and low <= 1.0 + CI_CLEARANCE and high >= 1.0 - CI_CLEARANCE)
    small = abs(ratio - 1.0) < MIN_GAP
    parts = () if no_gap or small else (
        _rolled(mine["python"], theirs["python"], stages_r, stages_ref, gap, ref_median)
        if "stacks" in mine["python"] and "stacks" in theirs["python"] else _named(f_r, f_ref, gap, ref_median))
    reason = (f"the ratio's CI includes 1 or comes within {CI_CLEARANCE:.0%} of it: the gap is within the "
              "timing's noise" if no_gap else
              f"the gap is under {MIN_GAP:.0%} of the reference's call: below what the timing resolves" if small else None)
    devices = {n: p["operators"]["device"] for n, p in ((base["runner"], mine), (base["reference"], theirs))
               if isinstance(p["operators"].get("device"), dict)}
    return Explanation(**base, verdict="no gap" if reason else "explained", reason=reason, devices=devices,
                       stages=stage_deltas, parts=parts, unexplained_s=gap - sum(p.delta_s for p in parts),
                       operators=() if reason else operators, overhead=overhead)


def _stacks(view: dict[str, Any], stages: dict[str, float], stage: str) -> list[tuple[tuple[str, ...], float]]:
    """A stage's sampled stacks as function names, scaled to the stage's scaled time."""
    profiled = float(view["stage_s"].get(stage, 0.0))
    k = stages.get(stage, 0.0) / profiled if profiled > 0 else 0.0
    frames = view["frames"]
    return [(tuple(frames[i] for i in idx), float(s) * k) for idx, s in view["stacks"].get(stage, [])]


def _rolled(mine: dict[str, Any], theirs: dict[str, Any], stages_r: dict[str, float], stages_ref: dict[str, float],
            gap: float, ref_median: float) -> tuple[Part, ...]:
    """The functions named from the sampled call stacks, small differences rolled up to their
    callers (`rollup.roll_up`), stage by stage."""
    floor = max(NAME_FRACTION * abs(gap), NAME_FLOOR * ref_median)
    out: list[Part] = []
    ticks = [float(v.get("interval_s") or 0.0) / max(1, int(v.get("calls") or 1)) for v in (mine, theirs)]
    for stage in STAGES:
        named, _ = roll_up(_stacks(mine, stages_r, stage), _stacks(theirs, stages_ref, stage), floor, *ticks)
        out.extend(Part(stage, r.name, r.delta_s, r.runner_s, r.reference_s, r.callees) for r in named)
    return tuple(out)


def _named(f_r: dict[tuple[str, str], float], f_ref: dict[tuple[str, str], float], gap: float,
           ref_median: float) -> tuple[Part, ...]:
    """The functions that moved by at least the floor; then, of the functions left, their modules
    that moved by at least the floor together (``module:* (N functions)``)."""
    floor = max(NAME_FRACTION * abs(gap), NAME_FLOOR * ref_median)
    by_stage: dict[str, list[Part]] = {}
    left: dict[tuple[str, str], list[float]] = {}
    for key in sorted(set(f_r) | set(f_ref)):
        stage, name = key
        a, b = f_r.get(key, 0.0), f_ref.get(key, 0.0)
        if name != "(rest)" and abs(a - b) >= floor:
            by_stage.setdefault(stage, []).append(Part(stage, name, a - b, a, b))
        else:
            group = left.setdefault((stage, name.split(":", 1)[0] if name != "(rest)" else name), [0.0, 0.0, 0])
            group[0] += a
            group[1] += b
            group[2] += 1
    out: list[Part] = []
    for stage in STAGES:
        out.extend(sorted(by_stage.get(stage, []), key=lambda p: -abs(p.delta_s))[:NAMED_PER_STAGE])
        groups = [Part(stage, f"{module}:* ({int(n)} functions)", a - b, a, b)
                  for (st, module), (a, b, n) in left.items()
                  if st == stage and module != "(rest)" and abs(a - b) >= floor]
        out.extend(sorted(groups, key=lambda p: -abs(p.delta_s))[:NAMED_PER_STAGE])
    return tuple(out)


def _operator_deltas(o_r: dict[tuple[str, str], float], o_ref: dict[tuple[str, str], float], runner: str,
                     reference: str) -> tuple[OperatorDelta, ...]:
    names_r = {k[1] for k in o_r}
    names_ref = {k[1] for k in o_ref}
    rows = []
    for key in set(o_r) | set(o_ref):
        stage, op = key
        name, shapes = op.split("\t", 1)
        a, b = o_r.get(key, 0.0), o_ref.get(key, 0.0)
        only = runner if op not in names_ref else reference if op not in names_r else None
        rows.append(OperatorDelta(stage, name, shapes, a - b, a, b, only))
    rows.sort(key=lambda o: (o.only_in is None, -abs(o.delta_s)))
    return tuple(rows[:OPERATORS_LISTED])


def explain_change(current: dict[str, Any], baseline: dict[str, Any], low: float | None = None,
                   high: float | None = None) -> Explanation:
    """`current` against `baseline`: one runner in two runs (a change `compare` or `history` found),
    the gap being the difference of their medians; `low` / `high` bound current ÷ baseline."""
    cur, base = _num(current.get("lat_median_s")), _num(baseline.get("lat_median_s"))
    ratio = cur / base if cur is not None and base else None
    name = str(current.get("runner"))
    mine = {**current, "runner": f"{name} (run {current.get('run_id')})", "ref_ratio": ratio,
            "ref_ratio_low": low, "ref_ratio_high": high}
    theirs = {**baseline, "runner": f"{name} (run {baseline.get('run_id')})"}
    return explain_pair(mine, theirs)


def explain_records(records: Iterable[dict[str, Any]]) -> list[Explanation]:
    """Every runner's explanation against its reference, for records that asked for one (a
    profile, or an explain pass that failed), each cell's first pass only."""
    recs = [r for r in map(clean_record, records) if not r.get("pass_index")]
    by_cell: dict[tuple[Any, Any], dict[str, dict[str, Any]]] = {}
    for r in recs:
        by_cell.setdefault((r.get("run_id"), r.get("pair_id")), {})[str(r.get("runner"))] = r
    out = []
    for runners in by_cell.values():
        for name, rec in runners.items():
            ref = runners.get(str(rec.get("reference")))
            if ref is None or name == rec.get("reference") or not (rec.get("explain_status") or ref.get("explain_status")):
                continue
            out.append(explain_pair(rec, ref))
    return out
