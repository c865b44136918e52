"""Runner registry: ``torch`` (raw module call) and ``pipeline`` (transformers.pipeline)."""

from .base import PhaseTimes, Runner
from .pipeline import PipelineRunner, build_pipeline
from .raw import TorchRunner

__all__ = ["PhaseTimes", "Runner", "PipelineRunner", "TorchRunner", "build_pipeline", "RUNNER_DESCRIPTIONS"]

RUNNER_DESCRIPTIONS = {
    "torch": "raw module call: task preprocess -> module(**inputs) under torch.inference_mode -> postprocess in torch",
    "pipeline": "transformers.pipeline(task, model=<same module object>, tokenizer=...) called with batch_size",
}
