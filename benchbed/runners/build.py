"""Building a runner for a case in *this* process: the one place the cell, an environment's worker
and a server's worker share (below both `execute` and `serving`, so neither imports the other).

It holds what that needs and nothing of the run around it: the process settings every measuring
process takes (`setup_process`), the models loaded once per process (`ModelCache`), the plug-in
modules a case's task and runner come from (`plugin_sources` on one side, `load_sources` on the
other), and `build_runner`.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable

from ..spec import Case

__all__ = ["ModelCache", "build_runner", "load_sources", "plugin_sources", "release", "setup_process",
           "source_of"]


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


def setup_process(config: Any, threads: int | None = None) -> None:
    """Settings every measuring process (the run's, or an isolated child) takes from the config:
    the tokenizer parallelism (fixed for every runner: a pipeline would otherwise set it to
    "false" for the whole process on first use, changing how fast later raw-path tokenisation
    runs), torch's thread count (`threads`, the parent's, wins over the config's), TF32, and
    quiet library logging."""
    import logging

    import torch
    import transformers

    os.environ["TOKENIZERS_PARALLELISM"] = "true" if config.tokenizers_parallelism else "false"
    if threads or config.threads:
        torch.set_num_threads(threads or config.threads)
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


class ModelCache:
    """Models loaded and cast once per (model, head, dtype, device, variant), and anything a runner
    builds once per process (pipelines, exported ONNX sessions), keyed by what cannot change."""

    def __init__(self, seed: int = 0, trust_remote_code: bool = False) -> None:
        self.seed = seed
        self.trust_remote_code = trust_remote_code
        self._bundles: dict[tuple, Any] = {}
        self._objects: dict[tuple, Any] = {}

    @staticmethod
    def bundle_key(case: Case, task: Any) -> tuple:
        compile_opts = ((case.option("compile_backend", "inductor"), case.option("compile_mode"))
                        if case.compiled else None)
        return (case.model, task.head, task.labels, task.load_dtype(case.dtype), case.device, case.attn_impl,
                case.option("int8", "dynamic") if case.dtype == "int8" else None, compile_opts)

    def bundle(self, case: Case, task: Any) -> Any:
        """The model of `case` for `task`, loaded once (compiled in place when asked, so every
        runner calls the same compiled module object)."""
        from ..models import load_model

        key = self.bundle_key(case, task)
        if key not in self._bundles:
            if case.device.startswith("cuda"):
                # Another model's weights left on the GPU would count in this case's memory peaks.
                self.clear()
                release(case.device)
            bundle = load_model(case.model, task.head, task.labels, task.load_dtype(case.dtype), case.device,
                                seed=self.seed, trust_remote_code=self.trust_remote_code, attn_impl=case.attn_impl,
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
        """The object cached under `key`, made by `factory` on first use (handed to runners as their
        ``cache``; their keys hold ``id(bundle)``, valid while the bundle is cached)."""
        if key not in self._objects:
            self._objects[key] = factory()
        return self._objects[key]

    def clear(self) -> None:
        self._bundles.clear()
        self._objects.clear()


def source_of(cls: Any, builtin: str) -> dict[str, str] | None:
    """Where a class registered outside benchbed comes from: its module name and file (None for
    one of benchbed's own, under `builtin`)."""
    module = getattr(cls, "__module__", "") or ""
    if not cls or module.startswith(builtin):
        return None
    mod = sys.modules.get(module)
    return {"module": module, "file": getattr(mod, "__file__", None) or ""}


def plugin_sources(task: str, runner: str) -> list[dict[str, str]]:
    """Where `task` and `runner` come from when a suite or a test file registered them."""
    from . import get_runner
    from ..tasks import _REGISTRY

    sources = [source_of(_REGISTRY.get(task), "benchbed.tasks"), source_of(get_runner(runner, task),
                                                                             "benchbed.runners")]
    return [s for s in sources if s]


def _load_source(source: dict[str, str]) -> None:
    import importlib
    import importlib.util

    try:
        importlib.import_module(source["module"])
        return
    except ImportError:
        if not source.get("file"):
            raise
    spec = importlib.util.spec_from_file_location(source["module"].replace(".", "_"), source["file"])
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]


def load_sources(sources: Iterable[dict[str, str]]) -> None:
    """Load the plug-in modules `plugin_sources` named (on the other side)."""
    for source in sources:
        if not source.get("file") or os.path.exists(source["file"]):
            _load_source(source)


def build_runner(case: Case, inputs: list[Any], models: ModelCache, sources: Iterable[dict[str, str]] = ()) -> Any:
    """`case`'s runner built in this process on `models`' copy of its model and `inputs` (not
    prepared yet); `RunnerUnavailable` when the runner cannot serve the case."""
    from ..measure.timer import device_sync
    from ..tasks import get_task
    from . import make_runner

    load_sources(sources)
    task = get_task(case.task).configure(case)
    bundle = models.bundle(case, task)
    return make_runner(case, task, bundle, inputs, device_sync(case.device), models.cache, models.seed)
