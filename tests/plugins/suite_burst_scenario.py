"""A scenario defined outside benchbed, in a suite file: ``burst``, where one timed sample is a burst
of N back-to-back calls (the ``burst`` option, default 4), as a client that sends a few requests at
once sees it. It declares its option, two record columns, its console line and its report section.

Used by tests/test_scenario_plugin.py through the CLI, the pytest door and the report, without any
edit in benchbed/."""

from benchbed import Matrix
from benchbed.execute.drivers import Driver
from benchbed.pytest_plugin import parametrize
from benchbed.scenarios import Scenario, register_scenario


class BurstDriver(Driver):
    block_calls = 1  # a burst is a sample: runners alternate burst by burst
    per_call_passes = False  # phases and FLOPs are per call, not per burst

    def calls(self) -> int:
        return int(self.case.option("burst", 4))

    def call_of(self, run):
        n, call = self.calls(), super().call_of(run)

        def burst():
            for _ in range(n):
                out = call()
            return out

        return burst

    def runner_columns(self, name, run, stats):
        return {"burst_calls": self.calls(), "burst_call_s": stats.median / self.calls()}


def _summary(rec, parity):
    return f"{rec['burst_call_s'] * 1e3:.2f} ms per call in bursts of {rec['burst_calls']} ({parity})"


def section(records):
    from benchbed.report.html import esc, fmt_ms, table

    rows = [[esc(r["task"]), esc(r["runner"]), esc(int(r["burst_calls"])), fmt_ms(r["burst_call_s"])]
            for _, r in records.iterrows()]
    return "<h3>Bursts</h3>" + table(["task", "runner", "calls per burst", "ms per call in a burst"], rows)


register_scenario(Scenario(
    name="burst", description="each sample is a burst of N back-to-back calls (option burst, default 4)",
    driver=BurstDriver, options=("burst",), columns=(("burst_calls", "int64"), ("burst_call_s", "float64")),
    label=lambda opts: f"burst x{opts.get('burst', 4)}", summary=_summary, section=section))

MATRIX = Matrix(task=("text-classification",), model=("synthetic:bert-tiny",), batch_size=(1,), seq_len=(16,),
                scenario=("burst",), options=(("burst", 3),))


@parametrize(MATRIX)
def test_burst(benchbed, case):
    benchbed.run(case)
