"""The ``latency`` scenario (the default): one call at a time on one batch, runners interleaved
block by block (see `base.Driver`, whose behaviour it is)."""

from __future__ import annotations

from ...scenarios import Scenario, register_scenario
from .base import Driver

__all__ = ["LatencyDriver", "SCENARIO"]


class LatencyDriver(Driver):
    """One call at a time on one batch (real inputs: cycling through seeded batches)."""


SCENARIO = register_scenario(Scenario(
    name="latency", description="one call at a time on one batch, runners interleaved block by block",
    driver=LatencyDriver, sample="call"))
