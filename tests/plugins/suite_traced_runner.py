"""A runner defined outside benchbed, in a suite file: the module called through torch.jit.trace.

Used by tests/test_runner_plugin.py through the CLI (``benchbed run --suite``), the pytest door
and the report, without any edit in benchbed/."""

import torch

from benchbed import Matrix
from benchbed.pytest_plugin import parametrize
from benchbed.runners import StagedRunner, register_runner


class _Positional(torch.nn.Module):
    """The module on positional inputs (jit.trace takes a tuple), returning its first output."""

    def __init__(self, module, names):
        super().__init__()
        self.module, self.names = module, names

    def forward(self, *args):
        return self.module(**dict(zip(self.names, args)), return_dict=False)[0]


@register_runner
class TracedRunner(StagedRunner):
    NAME = "traced"
    DESCRIPTION = "torch.jit.trace of the same module, one trace per input shape"

    @classmethod
    def unavailable(cls, task, case):
        return None if task.single_forward else f"{task.name} is not one module call"

    def prepare(self):
        with torch.inference_mode():
            enc = self.task.preprocess(self.bundle, self.inputs, self.device)
            kwargs = self.task.module_inputs(self.bundle, enc)
            self.names = list(kwargs)
            self.output = type(self.bundle.module(**kwargs))
            self.key = next(iter(self.bundle.module(**kwargs).keys()))
        shapes = tuple(tuple(v.shape) for v in kwargs.values())

        def trace():
            with torch.no_grad():
                return torch.jit.trace(_Positional(self.bundle.module, self.names), tuple(kwargs.values()),
                                       strict=False, check_trace=False)

        self.traced = self.cache(("traced", id(self.bundle), self.task.name, shapes), trace)
        return 0.0

    def forward(self, encoded):
        kwargs = self.task.module_inputs(self.bundle, encoded)
        return self.output(**{self.key: self.traced(*(kwargs[n] for n in self.names))})


MATRIX = Matrix(task=("text-classification",), model=("synthetic:bert-tiny",), runner=("torch", "traced"),
                batch_size=(1, 2), seq_len=(16,))


@parametrize(MATRIX)
def test_traced(benchbed, case):
    benchbed.run(case)
