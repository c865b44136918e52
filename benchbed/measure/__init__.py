"""Measurement core: timing loop, statistics, memory, device counters, FLOPs. Knows nothing of models or tasks."""

from .memory import CudaPeak, MemoryCap, PeakRSS, rss_bytes, trim_heap
from .stats import (
    Summary,
    bootstrap_median_ci,
    median_ci_order,
    noise_warning,
    ratio_ci,
    summarize,
)
from .timer import StopRule, Timing, measure, no_sync

__all__ = [
    "CudaPeak", "MemoryCap", "PeakRSS", "rss_bytes", "trim_heap", "Summary", "bootstrap_median_ci", "median_ci_order",
    "noise_warning", "ratio_ci", "summarize", "StopRule", "Timing", "measure", "no_sync",
]
