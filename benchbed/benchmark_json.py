"""benchbed's records in pytest-benchmark's JSON format (``--benchmark-json PATH``), written by us.

pytest-benchmark has no public call for "record these durations", and feeding its fixture through
private functions broke with its releases; its JSON file, though, is a published format that its
own tools read (``pytest-benchmark compare a.json b.json``, ``--benchmark-compare``). So the pytest
door writes the file itself: one benchmark per record, every raw sample in ``stats.data``, the
statistics computed exactly as pytest-benchmark computes them (quartiles by its methods 2 and 3,
Tukey fences, sample standard deviation), and the benchbed columns in ``extra_info``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from bisect import bisect_left, bisect_right
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from .atomic import write_atomic
from .display import json_value

__all__ = ["benchmark_stats", "benchmark_entry", "write_benchmark_json"]

#: the record columns copied into each benchmark's ``extra_info``
EXTRA = ("run_id", "case_id", "pair_id", "task", "model", "runner", "reference", "device", "dtype", "batch_size",
         "seq_len", "parity_ok", "items_per_s", "ref_ratio", "ref_ratio_low", "ref_ratio_high", "pairing",
         "interfered", "interference")


def _quartiles(data: Sequence[float]) -> tuple[float, float]:
    """Q1 and Q3 as pytest-benchmark computes them (its stats.py, Wikipedia's methods 3 and 2)."""
    n = len(data)
    if n == 1:
        return data[0], data[0]
    if n % 2:
        k, q = n // 4, n % 4
        if q == 1:
            return 0.25 * data[k - 1] + 0.75 * data[k], 0.75 * data[3 * k] + 0.25 * data[3 * k + 1]
        return 0.75 * data[k] + 0.25 * data[k + 1], 0.25 * data[3 * k + 1] + 0.75 * data[3 * k + 2]
    return statistics.median(data[: n // 2]), statistics.median(data[n // 2:])


def benchmark_stats(samples: Sequence[float]) -> dict[str, Any]:
    """The ``stats`` object of one benchmark, raw samples (seconds, one round each) included."""
    data = [float(x) for x in samples]
    if not data:
        raise ValueError("no samples")
    s = sorted(data)
    mean = statistics.mean(data)
    stddev = statistics.stdev(data) if len(data) > 1 else 0
    q1, q3 = _quartiles(s)
    iqr = q3 - q1
    lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    iqr_out = sum(1 for x in data if x < lo or x > hi)
    sd_out = sum(1 for x in data if x < mean - stddev or x > mean + stddev)
    total = sum(data)
    return {
        "min": s[0], "max": s[-1], "mean": mean, "stddev": stddev, "rounds": len(data),
        "median": statistics.median(data), "iqr": iqr, "q1": q1, "q3": q3, "iqr_outliers": iqr_out,
        "stddev_outliers": sd_out, "outliers": f"{sd_out};{iqr_out}",
        "ld15iqr": s[0] if len(s) == 1 else s[bisect_left(s, lo)],
        "hd15iqr": s[0] if len(s) == 1 else s[bisect_right(s, hi) - 1],
        "ops": len(data) / total if total else 0, "total": total, "data": data, "iterations": 1,
    }


def benchmark_entry(record: dict[str, Any], samples: Sequence[float], name: str, fullname: str,
                    group: str | None = None, param: str | None = None) -> dict[str, Any]:
    """One element of ``benchmarks``: a record of status ok and its raw samples; `param` is the
    case label (the test id of a parametrized suite test)."""
    label = param or name
    return {
        "group": group, "name": name, "fullname": fullname, "params": {"case": label}, "param": label,
        "extra_info": {k: json_value(record.get(k)) for k in EXTRA if k in record},
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": len(samples),
                    "max_time": None, "min_time": None, "warmup": json_value(record.get("warmup"))},
        "stats": benchmark_stats(samples),
    }


def _machine_info() -> dict[str, Any]:
    uname = platform.uname()
    return {"node": uname.node, "processor": uname.processor, "machine": uname.machine,
            "python_compiler": platform.python_compiler(), "python_implementation": platform.python_implementation(),
            "python_implementation_version": platform.python_version(), "python_version": platform.python_version(),
            "python_build": list(platform.python_build()), "release": uname.release, "system": uname.system,
            "cpu": {"count": os.cpu_count()}}


def write_benchmark_json(path: str | os.PathLike[str], entries: Iterable[dict[str, Any]],
                         commit_info: dict[str, Any] | None = None) -> int:
    """Write `entries` to `path` in pytest-benchmark's format; when `path` already holds such a file
    (pytest-benchmark wrote its own benchmarks there), ours are added to it. Returns how many."""
    entries = list(entries)
    doc: dict[str, Any] | None = None
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
            doc = None
    except (OSError, ValueError):
        doc = None
    if doc is None:
        from . import __version__

        doc = {"machine_info": _machine_info(), "commit_info": commit_info or {}, "benchmarks": [],
               "datetime": datetime.now(timezone.utc).isoformat(), "version": f"benchbed {__version__}"}
    doc["benchmarks"].extend(entries)
    body = json.dumps(doc, indent=4, ensure_ascii=True).encode()
    write_atomic(path, lambda fh: fh.write(body))
    return len(entries)
