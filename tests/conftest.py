"""Shared fixtures: a module-scoped engine session on the tiny preset, and a fast stop rule."""

from __future__ import annotations

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def fast_rule():
    from benchbed.measure import StopRule

    return StopRule(warmup=1, min_samples=3, min_time_s=0.02, max_time_s=0.5)


@pytest.fixture
def tiny_session(tmp_path, fast_rule):
    from benchbed.engine import EngineConfig, Session

    return Session(str(tmp_path / "results"), EngineConfig(rule=fast_rule, phase_calls=2))


def run_cli(*args: str, cwd: str | None = None, timeout: float = 600, env: dict | None = None):
    """The real `benchbed` console entry, in a subprocess."""
    import subprocess

    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "benchbed.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout, env=full_env)
