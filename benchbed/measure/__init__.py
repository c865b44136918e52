"""Measurement core: timing loop, statistics, memory. Knows nothing of models or tasks."""

from .memory import CudaPeak, PeakRSS, rss_bytes
from .stats import Summary, bootstrap_median_ci, median_ci_order, noise_warning, ratio_ci, summarize
from .timer import StopRule, Timing, measure, no_sync

__all__ = [
    "CudaPeak", "PeakRSS", "rss_bytes", "Summary", "bootstrap_median_ci", "median_ci_order",
    "noise_warning", "ratio_ci", "summarize", "StopRule", "Timing", "measure", "no_sync",
]
