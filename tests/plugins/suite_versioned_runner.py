"""A runner whose cost and answers come from an installed package, ``bbtiny`` (made by the tests
as local wheels, tests/wheels.py): the raw module call, then ``bbtiny.work(logits)``. Versions of
bbtiny that add work make this runner slower; a version that scales the logits changes its
answers. Environments (``--env v=bbtiny==1.5``) and bisection are tested through it."""

from benchbed import Matrix
from benchbed.runners import register_runner
from benchbed.runners.raw import TorchRunner


@register_runner
class VersionedRunner(TorchRunner):
    NAME = "versioned"
    DESCRIPTION = "the torch runner, then bbtiny.work() on its output (cost and answers set by bbtiny's version)"

    def forward(self, encoded):
        import bbtiny

        out = super().forward(encoded)
        out["logits"] = bbtiny.work(out["logits"])
        return out


MATRIX = Matrix(task=("text-classification",), model=("synthetic:bert-tiny",), runner=("versioned",),
                batch_size=(1,), seq_len=(16,), dtype=("fp32",))
