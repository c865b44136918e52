"""A launcher defined outside benchbed, in a suite file: it measures every cell twice in this
process and keeps the second measurement (a warm-everything launcher a user might want).

Used by tests/test_launchers.py through the CLI (``benchbed run --suite ... --launcher twice``) and
the pytest door (``pytest THIS_FILE --benchmark --benchbed-launcher twice``), without any edit in
benchbed/."""

from benchbed import Matrix
from benchbed.execute.cell import measure_cell
from benchbed.execute.launchers import Launcher, register_launcher
from benchbed.pytest_plugin import parametrize

#: (task, batch size) of every cell measured, in order, so the test can count the calls.
MEASURED = []


@register_launcher
class Twice(Launcher):
    NAME = "twice"
    description = "each cell measured twice in this process; the second measurement is kept"

    def notes(self):
        return ["the twice launcher measures every cell twice and keeps the second"]

    def measure(self, job):
        for _ in range(2):
            MEASURED.append((job.cases[0].task, job.cases[0].batch_size))
            results = measure_cell(job.cases, self.workbench, job.config_for(self.config), self.ctx, job.pass_index)
        for _, rec, _ in results:
            rec["message"] = f"measured {sum(1 for m in MEASURED if m == MEASURED[-1])} times"
        return results, False


MATRIX = Matrix(task=("text-classification",), model=("bert-tiny",), batch_size=(1, 2), seq_len=(16,))


@parametrize(MATRIX)
def test_twice(benchbed, case):
    benchbed.run(case)
