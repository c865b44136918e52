"""Drivers: how a cell drives its runners, one module per scenario (``latency``, ``dataset``,
``server``, ``http``) plus ``training`` (the driver of every training task: one optimizer step per sample).
Each scenario module declares itself with a `benchbed.scenarios.Scenario`; a plugin does the same
from its own file (``tests/plugins/suite_burst_scenario.py`` defines one outside benchbed)."""

from __future__ import annotations

from typing import Any

from ...scenarios import get_scenario
from ...runners.failures import Skip
from . import dataset, latency, server  # noqa: F401 - each registers its scenario
from . import http  # noqa: F401,E402 - after server, which it builds on (and after it in listings)
from .base import LATENCY_BATCHES, Driver, check_inputs
from .training import TrainingDriver, time_to_loss

__all__ = ["Driver", "TrainingDriver", "make_driver", "check_inputs", "time_to_loss", "LATENCY_BATCHES"]


def make_driver(case: Any, task: Any, bundle: Any, config: Any, cache: Any) -> Driver:
    """The driver of `case`'s scenario (training tasks: one optimizer step per sample). A scenario
    whose samples are dataset passes does not drive generation tasks yet (time to first result
    per example is not measured there); latency and server do (the server streams per request)."""
    if getattr(task, "trains", False):
        return TrainingDriver(case, task, bundle, config, cache)
    scenario = get_scenario(case.scenario)
    if scenario.sample == "pass" and task.streams:
        raise Skip(f"the {scenario.name} scenario does not drive generation tasks yet (time to first result per "
                   f"example is not measured there); use --scenario latency or server")
    return scenario.driver_class()(case, task, bundle, config, cache)
