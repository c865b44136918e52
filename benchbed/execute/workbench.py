"""What a run keeps between cells: the models and per-run objects of `runners.build.ModelCache`,
and the workers of the run's environments (``RUNNER@ENV``), started on first use."""

from __future__ import annotations

from typing import Any

from ..runners.build import ModelCache, release, setup_process

__all__ = ["Workbench", "release", "setup_process"]


class Workbench(ModelCache):
    """Caches for one run (models depend only on the seed, so they stay valid for the whole run)."""

    def __init__(self, seed: int = 0, trust_remote_code: bool = False) -> None:
        super().__init__(seed, trust_remote_code)
        #: workers of the run's environments (``RUNNER@ENV``), started on first use; not cleared
        #: with the models (a worker keeps its own), ended by `close`
        self._env_workers: Any = None

    def env_workers(self, config: Any) -> Any:
        """The run's environment workers (`env_workers.EnvWorkers` over ``config.envs``)."""
        if self._env_workers is None:
            from .env_workers import EnvWorkers

            self._env_workers = EnvWorkers({}, config)
        # a derived session (a bisection step) may bring environments of its own
        self._env_workers.envs.update({e.spec.name: e for e in config.envs})
        return self._env_workers

    def close(self) -> None:
        """End what the run started beside its models (environment workers)."""
        if self._env_workers is not None:
            self._env_workers.close()
            self._env_workers = None
