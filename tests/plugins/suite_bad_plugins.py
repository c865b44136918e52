"""Plug-ins that misbehave on purpose (issue #30): launchers whose `measure` raises, returns junk,
returns nothing or drops a case, and a scenario whose column does not hold the type it declares.
benchbed must turn each into error records naming the plug-in, never a traceback or a lost cell.

Used by tests/test_plugin_containment.py through the CLI."""

from benchbed import Matrix
from benchbed.execute.cell import measure_cell
from benchbed.execute.drivers import Driver
from benchbed.execute.launchers import Launcher, register_launcher
from benchbed.scenarios import Scenario, register_scenario


@register_launcher
class Raises(Launcher):
    NAME = "raises"

    def measure(self, job):
        raise RuntimeError("\x1b[31mthe cluster is on fire\x1b[0m")


@register_launcher
class Junk(Launcher):
    NAME = "junk"

    def measure(self, job):
        return {"not": "results"}


@register_launcher
class Nothing(Launcher):
    NAME = "nothing"

    def measure(self, job):
        return [], False


@register_launcher
class DropsOne(Launcher):
    NAME = "drops-one"

    def measure(self, job):
        results = measure_cell(job.cases, self.workbench, job.config_for(self.config), self.ctx, job.pass_index)
        return results[:1], False


class WrongColumnDriver(Driver):
    def runner_columns(self, name, run, stats):
        return {"wrong_count": "three"}  # declared int64


register_scenario(Scenario(name="wrong-column", description="a column of the wrong type",
                           driver=WrongColumnDriver, columns=(("wrong_count", "int64"),)))

MATRIX = Matrix(task=("text-classification",), model=("synthetic:bert-tiny",), batch_size=(1,), seq_len=(16,))
