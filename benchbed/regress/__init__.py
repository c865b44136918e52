"""Comparing runs and tracking history: per-case change with confidence intervals and
significance, change points over nightly series, thresholds per metric and case pattern."""

from .compare import (
                      CompareSettings,
                      Comparison,
                      case_label,
                      compare_frames,
                      compare_runs,
                      env_differences,
                      env_fingerprint,
                      newest_against_earlier,
                      sample_problem,
)
from .thresholds import Rule, Thresholds, parse_rule

__all__ = ["CompareSettings", "Comparison", "case_label", "compare_frames", "compare_runs", "env_differences",
           "env_fingerprint", "newest_against_earlier", "sample_problem", "Rule", "Thresholds", "parse_rule"]
