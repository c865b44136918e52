"""Running cases: run-wide settings, the workbench of cached models and runtimes, `measure_cell`
and its passes, failure classification, and the launchers (in this process or a fresh one).

Nothing here imports `benchbed.engine`, the CLI or the pytest door: a launcher is handed the
cell and the callables it needs.
"""

from .config import ISOLATE_MODES, PAIRINGS, EngineConfig, RunContext
from ..runners.failures import Skip, classify, unavailable_reason
from .workbench import Workbench

__all__ = ["EngineConfig", "ISOLATE_MODES", "PAIRINGS", "RunContext", "Skip", "Workbench", "classify",
           "unavailable_reason"]
