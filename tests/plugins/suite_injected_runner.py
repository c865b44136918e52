"""Proof by injection for `benchbed explain`: ``torch-injected`` is the raw module call plus a known
busy delay inside a *named* function at a chosen stage (``BENCHBED_TEST_INJECT=STAGE=MS``, default
``preprocess=2``); ``torch-twin`` and ``pipeline-twin`` are the raw module call and the pipeline
under another name (a gap of about 0).

Used by tests/test_explain.py and scripts/explain_injections.py through ``--suite``."""

import os
import time

import torch

from benchbed import Matrix
from benchbed.runners import PipelineRunner, TorchRunner, register_runner


def _spec():
    stage, _, ms = os.environ.get("BENCHBED_TEST_INJECT", "preprocess=2").partition("=")
    return stage, float(ms) / 1000


# Each delay spins in its own body (not in a helper), so its own time is the function's: the
# function explain must name.
def injected_tokenise_delay(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def injected_forward_delay(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def injected_postprocess_delay(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


_DELAYS = {"preprocess": injected_tokenise_delay, "forward": injected_forward_delay,
           "postprocess": injected_postprocess_delay}


@register_runner
class InjectedRunner(TorchRunner):
    NAME = "torch-injected"
    DESCRIPTION = "testing aid: the raw module call plus a known delay in a named function (BENCHBED_TEST_INJECT)"

    def _delay(self, stage):
        where, seconds = _spec()
        if where == stage:
            _DELAYS[stage](seconds)

    def _pre(self, bundle, inputs, device):
        self._delay("preprocess")
        return self.task.preprocess(bundle, inputs, device)

    def _post(self, bundle, enc, out):
        self._delay("postprocess")
        return self.task.postprocess(bundle, enc, out)

    def forward(self, encoded):
        self._delay("forward")
        return super().forward(encoded)

    def __call__(self):
        with torch.inference_mode():
            enc = self._pre(self.bundle, self.inputs, self.device)
            return self._post(self.bundle, enc, self.forward(enc))

    def call_in_stages(self, stage):
        with torch.inference_mode():
            enc = stage("preprocess", self._pre, self.bundle, self.inputs, self.device)
            out = stage("forward", self.forward, enc)
            return stage("postprocess", self._post, self.bundle, enc, out)


@register_runner
class TwinRunner(TorchRunner):
    NAME = "torch-twin"
    DESCRIPTION = "testing aid: the raw module call under another name (explain's A/A)"


@register_runner
class PipelineTwinRunner(PipelineRunner):
    NAME = "pipeline-twin"
    DESCRIPTION = "testing aid: the pipeline under another name (explain's A/A, scripts/explain_aa.py)"


MATRIX = Matrix(task=("text-classification",), model=("synthetic:bert-tiny",),
                runner=("torch", "torch-injected", "torch-twin"), batch_size=(1,), seq_len=(16,))
