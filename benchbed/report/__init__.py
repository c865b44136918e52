"""``benchbed report``: records in, one self-contained HTML page out (`page`), built from one module
per section (`sections`) and the charts they share (`charts`). A report never runs a model."""

from .page import build_report, write_report
from .sections.comparison import comparison_section

__all__ = ["build_report", "write_report", "comparison_section"]
