"""How many calls the untimed passes need (#31: non-timing work), measured on the default matrix:

- ``warmup``: each runner's first six calls after parity's, ÷ its timed median (does a second
  warm-up call still cost more than the steady state?);
- ``memory``: each runner's peak-RSS increase over five calls measured alone (is one call, or the
  median of three, the median of five?);
- ``phases``: each runner's phase medians over three calls against five.

The passes are instrumented by wrapping the engine's own functions in this process (nothing of
benchbed changes); the cells are timed briefly, the passes are what is measured.

    python scripts/pass_sizes.py warmup      # about 3 min on 2 cores
    python scripts/pass_sizes.py memory      # about 2 min
    python scripts/pass_sizes.py phases      # about 2 min
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time


def _session(warmup: int):
    from benchbed import DEFAULT_MATRIX
    from benchbed.engine import EngineConfig, Session
    from benchbed.measure import StopRule

    folder = tempfile.mkdtemp(prefix="benchbed-pass-sizes-")
    session = Session(folder, EngineConfig(rule=StopRule(warmup=warmup, min_samples=8, min_time_s=0.5,
                                                         max_time_s=1.5)))
    return session, DEFAULT_MATRIX.cases(), folder


def warmup() -> None:
    import benchbed.execute.cell as cell
    import benchbed.measure.paired as paired

    calls: dict[tuple[str, str], list[float]] = {}
    current = {}
    measure, measure_cell = cell.measure_interleaved, cell.measure_cell

    def timed(fns, rule, **kw):
        wrapped = {}
        for name, fn in fns.items():
            seen = calls.setdefault((current["cell"], name), [])

            def call(fn=fn, seen=seen):
                t0 = time.perf_counter()
                out = fn()
                seen.append(time.perf_counter() - t0)
                return out
            wrapped[name] = call
        return measure(wrapped, rule, **kw)

    def named(cases, *a, **kw):
        c = cases[0]
        current["cell"] = f"{c.task} {c.dtype} b{c.batch_size} s{c.seq_len}"
        return measure_cell(cases, *a, **kw)

    import benchbed.execute.launchers.in_process as in_process

    cell.measure_interleaved, in_process.measure_cell = timed, named
    paired.WARMUP_S = float("inf")  # every one of the six warm-up calls, however slow
    session, cases, folder = _session(7)  # parity's call counts as one: six more
    try:
        session.run(cases)
    finally:
        session.close()
        _remove(folder)
    rel = []
    for (name, runner), seen in calls.items():
        median = statistics.median(seen[6:])
        rel.append([x / median for x in seen[:6]])
        print(f"{name:36} {runner:9} {median * 1e3:8.2f} ms  " + " ".join(f"{x / median:.3f}" for x in seen[:6]))
    print(f"{len(rel)} runners; each warm-up call ÷ the timed median, median over runners: "
          + ", ".join(f"call {i + 1} {statistics.median(r[i] for r in rel):.4f}" for i in range(6)))
    print(f"first call over 1.15: {sum(r[0] > 1.15 for r in rel)}; second above all four later: "
          f"{sum(r[1] > max(r[2:]) for r in rel)} (noise alone: {len(rel) / 5:.1f})")


def memory() -> None:
    import numpy as np

    import benchbed.execute.passes as passes
    from benchbed.measure import PeakRSS, trim_heap
    from benchbed.runners.build import release

    rows = []

    def five(run, device, calls=3, **kw):
        deltas = []
        for _ in range(5):
            release(device, young=True)
            trim_heap()
            with PeakRSS() as rss:
                run()
                run.sync()
            deltas.append(rss.delta_bytes / 2**20)
        rows.append(deltas)
        return {"cpu_rss_peak_delta_mb": float(np.median(deltas[:3]))}

    passes.memory_columns = five
    _run_all()
    one = [abs(d[0] / np.median(d) - 1) for d in rows]
    three = [abs(np.median(d[:3]) / np.median(d) - 1) for d in rows]
    print(f"{len(rows)} runners; one call vs the median of five: over 5% in {sum(x > .05 for x in one)} "
          f"(max {100 * max(one):.0f}%); the median of three: over 5% in {sum(x > .05 for x in three)} "
          f"(max {100 * max(three):.0f}%)")


def phases() -> None:
    import numpy as np

    import benchbed.execute.passes as passes

    rows = []

    def five(run, calls):
        found = [p for p in (run.call_with_phases()[1] for _ in range(5)) if p]
        if not found:
            return {}
        for key in found[0]:
            values = [p[key] for p in found]
            rows.append((key, float(np.median(values[:3])), float(np.median(values))))
        return {f"{key}_s": float(np.median([p[key] for p in found])) for key in found[0]}

    passes.phase_columns = five
    _run_all()
    for key in ("pre", "fwd", "post"):
        dev = [abs(a / b - 1) for k, a, b in rows if k == key and b > 0]
        print(f"{key}: the median of three vs of five over {len(dev)} runners: median {100 * np.median(dev):.1f}%, "
              f"90th percentile {100 * np.percentile(dev, 90):.1f}%, max {100 * max(dev):.1f}%")


def _run_all() -> None:
    session, cases, folder = _session(2)
    try:
        session.run(cases)
    finally:
        session.close()
        _remove(folder)


def _remove(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("warmup", "memory", "phases"))
    args = ap.parse_args()
    {"warmup": warmup, "memory": memory, "phases": phases}[args.what]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
