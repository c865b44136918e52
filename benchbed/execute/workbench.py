"""What a run keeps between cells: models loaded and cast once per (model, head, dtype, device,
variant), and anything a runner builds once per run (pipelines, exported ONNX sessions), keyed by
what cannot change within the run."""

from __future__ import annotations

from typing import Any, Callable

from ..spec import Case

__all__ = ["Workbench", "release", "setup_process"]


def release(device: str, young: bool = False) -> None:
    """Hand freed memory back: Python's garbage, and the CUDA caching allocator's free blocks.

    `young` collects only the two younger generations: what the last few calls left in cycles.
    A full collection walks every object of the process (about 400,000 once transformers'
    pipelines are imported: 0.2 s on a 2-core VM), which the memory pass paid three times per
    runner and per cell — most of the quick matrix's wall time."""
    import gc

    gc.collect(1 if young else 2)
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def setup_process(config: Any) -> None:
    """Settings every measuring process (the run's, or an isolated child) takes from the config:
    the tokenizer parallelism (fixed for every runner: a pipeline would otherwise set it to
    "false" for the whole process on first use, changing how fast later raw-path tokenisation
    runs), torch's thread count, TF32, and quiet library logging."""
    import logging
    import os

    import torch
    import transformers

    os.environ["TOKENIZERS_PARALLELISM"] = "true" if config.tokenizers_parallelism else "false"
    if config.threads:
        torch.set_num_threads(config.threads)
    if config.tf32 is not None:
        torch.backends.cuda.matmul.allow_tf32 = config.tf32
        torch.backends.cudnn.allow_tf32 = config.tf32
    # torchao (imported by transformers where installed) warns once per CUDA extension a CPU build
    # lacks, and torch's pytree about torchao's enums: noise, not news, in every run.
    for name in ("torchao", "torch.utils._pytree"):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


class Workbench:
    """Caches for one run (models depend only on the seed, so they stay valid for the whole run)."""

    def __init__(self, seed: int = 0, trust_remote_code: bool = False) -> None:
        self.seed = seed
        self.trust_remote_code = trust_remote_code
        self._bundles: dict[tuple, Any] = {}
        self._objects: dict[tuple, Any] = {}
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

    @staticmethod
    def bundle_key(case: Case, task: Any) -> tuple:
        compile_opts = ((case.option("compile_backend", "inductor"), case.option("compile_mode"))
                        if case.compiled else None)
        return (case.model, task.head, task.labels, task.load_dtype(case.dtype), case.device, case.attn_impl,
                case.option("int8", "dynamic") if case.dtype == "int8" else None, compile_opts)

    def bundle(self, case: Case, task: Any) -> Any:
        """The model of `case` for `task`, loaded once per run (compiled in place when asked, so
        every runner calls the same compiled module object)."""
        from ..models import load_model

        key = self.bundle_key(case, task)
        if key not in self._bundles:
            if case.device.startswith("cuda"):
                # Another model's weights left on the GPU would count in this case's memory peaks.
                self.clear()
                release(case.device)
            bundle = load_model(case.model, task.head, task.labels, task.load_dtype(case.dtype), case.device, seed=self.seed,
                                trust_remote_code=self.trust_remote_code, attn_impl=case.attn_impl,
                                int8_method=str(case.option("int8", "dynamic")))
            if case.compiled:
                bundle.module.compile(backend=case.option("compile_backend", "inductor"),
                                      mode=case.option("compile_mode"))
            self._bundles[key] = bundle
        return self._bundles[key]

    @property
    def loaded(self) -> dict[tuple, Any]:
        """The models loaded so far, by `bundle_key` (a copy)."""
        return dict(self._bundles)

    def cache(self, key: tuple, factory: Callable[[], Any]) -> Any:
        """The object cached under `key` for the run, made by `factory` on first use (handed to
        runners as their ``cache``; their keys hold ``id(bundle)``, valid while the bundle is cached)."""
        if key not in self._objects:
            self._objects[key] = factory()
        return self._objects[key]

    def clear(self) -> None:
        self._bundles.clear()
        self._objects.clear()
