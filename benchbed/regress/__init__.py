"""Comparing runs: per-case change with confidence intervals and significance."""

from .compare import CompareSettings, case_label, compare_frames, env_differences

__all__ = ["CompareSettings", "case_label", "compare_frames", "env_differences"]
