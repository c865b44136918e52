"""The ONNX Runtime path: the task's own preprocess and postprocess, with the module call replaced
by an ONNX Runtime session over the same weights.

The module is exported once per (module object, task, input shape family) with
``torch.onnx.export(..., dynamo=True)`` — batch and sequence length dynamic, so one graph serves
every batch size and length of a run — and the session is cached for the run. Export and session
creation are timed into ``setup_s`` by `prepare`, never inside a timed call. The session gets the
same intra-op thread count as torch, so both runtimes use the same cores. Its output is wrapped in
the module's own output class (``SequenceClassifierOutput``, ``BaseModelOutput``...), so the task's
postprocess runs unchanged and parity compares like with like.

On CUDA the session runs through I/O binding on the tensors' own device buffers, so nothing goes
GPU → CPU → GPU inside a timed call (torch stays on the device; so does ORT). The CUDA provider is
given the case's device id (``cuda:1`` runs on the GPU that sync and NVML watch), and the session's
first provider is checked after it opens: ORT falls back to the CPU when cuDNN or cuBLAS do not
load, quietly at ``log_severity_level=3`` (microsoft/onnxruntime#23372), and such a runner is
``skipped`` with the reason rather than timed on the wrong device under a ``cuda`` label.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from typing import Any

from .base import RunnerUnavailable, StagedRunner

__all__ = ["OnnxRuntimeRunner", "bound_run", "check_providers"]

#: Exporting a module cast to these precisions gives graphs ORT's CPU provider has kernels for.
_CPU_DTYPES = ("fp32",)


class _Exported:
    """An ONNX Runtime session and how to call it: input names and the output class to rebuild."""

    def __init__(self, session: Any, names: list[str], output_cls: type, output_keys: list[str],
                 seconds: float) -> None:
        self.session = session
        self.names = names
        self.output_cls = output_cls
        self.output_keys = output_keys
        self.seconds = seconds
        self.charged = False  # setup seconds are charged to the first case that uses the export


def _providers(device: str) -> list[Any]:
    """The providers for `device`: CUDA on the case's device id, the CPU provider behind it."""
    if device.startswith("cuda"):
        from ..values import device_index

        # the arena grows by what is asked, not to the next power of two: less of the device held idle
        options = {"device_id": device_index(device), "arena_extend_strategy": "kSameAsRequested"}
        return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def check_providers(session: Any, device: str) -> None:
    """Raise `_Unsupported` when the session would not run on `device` (see the module docstring)."""
    got = session.get_providers()
    if device.startswith("cuda") and (not got or got[0] != "CUDAExecutionProvider"):
        raise _Unsupported(f"ONNX Runtime opened the session on {got[0] if got else 'no provider'} instead of "
                           f"CUDAExecutionProvider (cuDNN or cuBLAS did not load; see the CUDA provider's "
                           f"requirements for onnxruntime {_ort_version()})")


def _ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__


#: numpy element types of the torch dtypes the exported graphs take and give
_ELEMENT_TYPES = {"torch.float32": "float32", "torch.float16": "float16", "torch.int64": "int64",
                  "torch.int32": "int32", "torch.bool": "bool"}


def bound_run(session: Any, feeds: dict[str, Any], device: str) -> list[Any]:
    """Run `session` on torch tensors in place through I/O binding: inputs bound to their own
    buffers, outputs allocated by ORT on the same device and handed to torch through DLPack. No
    host copy either way; on the CPU the same path (which is how the tests check it)."""
    import numpy as np
    import torch

    kind = "cuda" if device.startswith("cuda") else "cpu"
    binding = session.io_binding()
    keep = []
    for name, tensor in feeds.items():
        t = tensor.contiguous()
        keep.append(t)
        index = t.device.index or 0 if kind == "cuda" else 0
        binding.bind_input(name, kind, index, np.dtype(_ELEMENT_TYPES[str(t.dtype)]), tuple(t.shape), t.data_ptr())
    index = torch.device(device).index or 0 if kind == "cuda" else 0
    for out in session.get_outputs():
        binding.bind_output(out.name, kind, index)
    binding.synchronize_inputs()
    session.run_with_iobinding(binding)
    binding.synchronize_outputs()
    return [torch.from_dlpack(v) for v in binding.get_outputs()]


def _export(module: Any, kwargs: dict[str, Any], device: str, threads: int) -> _Exported:
    """Export `module` called on `kwargs` with dynamic batch (and sequence) dimensions; open a session."""
    import logging
    import warnings

    import onnxruntime as ort
    import torch

    for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)
    names = list(kwargs)
    # batch 1 would be specialised away by torch.export: export on a batch of two
    example = {k: (v.repeat(2, *([1] * (v.dim() - 1))) if v.shape[0] == 1 else v) for k, v in kwargs.items()}

    class Call(torch.nn.Module):
        """The module on keyword inputs, returning every output tensor (logits; or start and end
        logits; or hidden states and pooled output), in the order of the module's output class."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any = None, attention_mask: Any = None, token_type_ids: Any = None,
                    pixel_values: Any = None) -> Any:
            given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                     "pixel_values": pixel_values}
            return self.inner(**{k: v for k, v in given.items() if v is not None}).to_tuple()

    unknown = set(names) - {"input_ids", "attention_mask", "token_type_ids", "pixel_values"}
    if unknown:
        raise _Unsupported(f"module inputs {sorted(unknown)} are not exported by this runner")
    batch = torch.export.Dim("batch", min=1, max=65536)
    seq = torch.export.Dim("seq", min=2, max=65536)
    dynamic = {k: ({0: batch, 1: seq} if example[k].dim() == 2 else {0: batch}) for k in names}
    with torch.inference_mode(False), torch.no_grad():
        reference = module(**example)
    t0 = time.perf_counter()
    fd, path = tempfile.mkstemp(suffix=".onnx", prefix="benchbed-")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Call(module), (), kwargs=example, dynamo=True, dynamic_shapes=dynamic, f=path,
                              verbose=False, external_data=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(path, options, providers=_providers(device))
        check_providers(session, device)
    finally:
        for leftover in (path, path + ".data"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    keys = [k for k, v in reference.items() if isinstance(v, torch.Tensor)]
    return _Exported(session, names, type(reference), keys, time.perf_counter() - t0)


class _Unsupported(Exception):
    """A module this runner cannot export."""


class OnnxRuntimeRunner(StagedRunner):
    NAME = "onnxruntime"
    DESCRIPTION = ("ONNX Runtime session of the same weights (torch.onnx.export, dynamo exporter, once per model; "
                   "export time in setup_s), with the task's own preprocess and postprocess")
    #: ORT's arena is outside torch's caching allocator: no allocator figures (NVML's still apply).
    TORCH_ALLOCATOR = False

    def state_bytes(self) -> int | None:
        return None

    @classmethod
    def unavailable(cls, task: Any, case: Any) -> str | None:
        for package in ("onnxruntime", "onnxscript", "onnx"):
            if importlib.util.find_spec(package) is None:
                return f"the onnxruntime runner needs the {package} package (pip install 'benchbed[onnx]')"
        if not task.single_forward:
            return f"{task.name} is not one module call (a generate() loop): the onnxruntime runner serves " \
                   f"single-forward tasks"
        if case.dtype == "int8":
            return "int8 (torchao-quantised linear layers) does not export to ONNX"
        if case.compiled:
            return "compiled applies to the torch module; the ONNX graph is exported from the eager module"
        if case.device == "mps":
            return "ONNX Runtime has no MPS execution provider"
        if case.device.startswith("cuda"):
            import onnxruntime as ort

            if case.dtype == "bf16":
                return ("ONNX Runtime's CUDA provider lacks bf16 kernels for these graphs (LayerNormalization, "
                        "Gelu...); fp32 and fp16 on CUDA")

            if "CUDAExecutionProvider" not in ort.get_available_providers():
                return "the installed onnxruntime has no CUDA execution provider (pip install onnxruntime-gpu)"
        elif case.dtype not in _CPU_DTYPES:
            return f"ONNX Runtime's CPU provider lacks {case.dtype} kernels for these graphs; fp32 only on the CPU"
        return None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exported: _Exported | None = None

    def _key(self, kwargs: dict[str, Any]) -> tuple:
        # one graph per module, task and input family; image sides are fixed in the graph
        fixed = tuple((k, tuple(v.shape[2:])) for k, v in kwargs.items() if v.dim() > 2)
        return ("onnxruntime", id(self.bundle), self.task.name, self.device, tuple(kwargs), fixed)

    def prepare(self) -> float:
        import torch

        with torch.inference_mode():
            enc = self.task.preprocess(self.bundle, self.inputs, self.device)
        kwargs = self.task.module_inputs(self.bundle, enc)
        try:
            self.exported = self.cache(self._key(kwargs), lambda: _export(self.bundle.module, kwargs, self.device,
                                                                          torch.get_num_threads()))
        except _Unsupported as exc:
            raise RunnerUnavailable(str(exc)) from None
        if self.exported.charged:
            return 0.0
        self.exported.charged = True
        return self.exported.seconds

    def forward(self, encoded: Any) -> Any:
        import torch

        ex = self.exported
        if ex is None:
            raise RuntimeError("OnnxRuntimeRunner.prepare() must run before the first call")
        kwargs = self.task.module_inputs(self.bundle, encoded)
        if self.device.startswith("cuda"):
            outs = bound_run(ex.session, {k: kwargs[k].detach() for k in ex.names}, self.device)
        else:  # numpy views of CPU tensors: no copy either
            outs = [torch.from_numpy(o) for o in ex.session.run(None, {k: kwargs[k].detach().numpy() for k in ex.names})]
        return ex.output_cls(**dict(zip(ex.output_keys, outs)))
