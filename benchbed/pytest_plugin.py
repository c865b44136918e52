"""The pytest door: ``pytest suites --benchmark``.

Registers ``--benchmark`` (without it, benchbed cases are skipped so a plain ``pytest`` stays
fast), ``--benchbed-results DIR`` and axis filters, a session-wide engine `Session`, and the
``benchbed`` fixture. Timing runs in benchbed's engine (device sync, adaptive stopping); the raw
samples go into parquet and, with pytest-benchmark's ``--benchmark-json PATH``, into that file in
pytest-benchmark's own format (written by `benchmark_json`, not through its private functions), so
``pytest-benchmark compare`` reads the numbers that went into parquet.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from .display import console_safe
from .measure.timer import StopRule
from .spec import DEFAULT_REFERENCE, Case, Matrix, SpecError
from .validate import arg, csv_values, duration, non_negative_float, positive_float

__all__ = ["BenchbedFixture", "parametrize"]

_FILTERS = {"task": "--benchbed-task", "model": "--benchbed-model", "runner": "--benchbed-runner",
            "device": "--benchbed-device", "dtype": "--benchbed-dtype", "batch_size": "--benchbed-batch-size",
            "seq_len": "--benchbed-seq-len", "attn_impl": "--benchbed-attn-impl", "compiled": "--benchbed-compiled"}


def _text(value: Any) -> str:
    """An axis value as a filter on the command line spells it."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parametrize(matrix: Matrix, *marks: Any) -> Any:
    """``@benchbed.pytest_plugin.parametrize(MATRIX)``: one test per case, id = case label, each
    marked ``benchbed`` plus `marks`, so ``-k`` and ``-m`` select on them."""
    params = [pytest.param(case, id=case.label, marks=[pytest.mark.benchbed, *marks]) for case in matrix.cases()]
    return pytest.mark.parametrize("case", params)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("benchbed", "benchbed: raw torch vs pipelines")
    group.addoption("--benchmark", action="store_true", default=False,
                    help="run benchbed benchmark cases (skipped without it)")
    group.addoption("--benchbed-results", metavar="DIR", default="results",
                    help="folder for parquet results (default: results/)")
    for axis, flag in _FILTERS.items():
        group.addoption(flag, metavar="V1,V2", default=None, help=f"run only cases with these {axis} values")
    group.addoption("--benchbed-max-time", type=arg(positive_float, "--benchbed-max-time"),
                    default=StopRule.max_time_s, metavar="S",
                    help="per-case cap on timed seconds (default: 10)")
    group.addoption("--benchbed-min-time", type=arg(non_negative_float, "--benchbed-min-time"),
                    default=StopRule.min_time_s, metavar="S",
                    help="timed seconds at least per case (default: 1)")
    group.addoption("--benchbed-budget", type=arg(duration, "--benchbed-budget"), default=None, metavar="TIME",
                    help="the session's time budget (90s, 2m): each runner's timing is capped at its share "
                         "of 40%% of it, as `benchbed run --budget` does (every selected test still runs)")
    group.addoption("--benchbed-reference", metavar="RUNNER", default=DEFAULT_REFERENCE,
                    help="the runner every other runner is compared with: parity and ratios (default: torch)")
    group.addoption("--benchbed-isolate", choices=["auto", "always", "never"], default="auto",
                    help="run cases in fresh subprocesses: auto (CUDA cases only, default), always, never")
    group.addoption("--benchbed-launcher", metavar="NAME", default=None,
                    help="where cells are measured: local (default), in-process, subprocess, ray, or a launcher "
                         "a suite module registers (checked once the suites are collected)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "benchbed: a benchbed benchmark case (runs only with --benchmark)")
    config._benchbed_records = []  # type: ignore[attr-defined]
    config._benchbed_cells = {}  # type: ignore[attr-defined]
    config._benchbed_done = {}  # type: ignore[attr-defined]
    config._benchbed_bench = []  # type: ignore[attr-defined]
    # `pytest --benchmark` with no path, from a checkout: the default benchmark (what `benchbed run`
    # runs), not the unit tests that `testpaths` names; plain `pytest` still runs the tests
    default = os.path.join(str(config.rootpath), "suites", "test_text.py")
    if (config.getoption("--benchmark") and config.args_source == pytest.Config.ArgsSource.TESTPATHS
            and os.path.isfile(default)):
        config.args[:] = [default + "::test_default"]
    if config.getoption("--benchmark"):
        _check_options(config)


def _check_options(config: pytest.Config) -> None:
    """Every benchbed option and variable checked once, before collection: a bad value is pytest's
    usage error (one line, exit 4), never an error in each test with a page of traceback."""
    from .atomic import resolve_target
    from .atomic import WriteFailed
    from .runners import runner_names
    from .store import run_dir_problem
    from .validate import check_run_id, check_writable

    results = config.getoption("--benchbed-results")
    if not str(results).strip():
        raise pytest.UsageError("--benchbed-results: empty path")
    problem = check_writable(results)
    if problem:
        raise pytest.UsageError(console_safe(problem, keep_newlines=False))
    reference = config.getoption("--benchbed-reference")
    if reference not in runner_names():
        raise pytest.UsageError(console_safe(f"--benchbed-reference: unknown runner {reference!r} "
                                             f"(valid: {', '.join(runner_names())})", keep_newlines=False))
    try:
        run_id = os.environ.get("BENCHBED_RUN_ID")
        if run_id is not None:
            check_run_id(run_id, "BENCHBED_RUN_ID")
            problem = run_dir_problem(results, run_id)
            if problem:
                raise SpecError(problem)
        path = _benchmark_json_path(config)
        if path:
            resolve_target(path)
    except (SpecError, WriteFailed) as exc:
        message = str(exc) if isinstance(exc, SpecError) else f"--benchmark-json: {exc}"
        raise pytest.UsageError(console_safe(message, keep_newlines=False)) from None


def _case_of(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("case") if callspec else None
    return case if isinstance(case, Case) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:  # an empty filter (an unset CI variable) is a mistake, not "every case"
        wanted = {axis: [v.lower() if axis == "compiled" else v for v in csv_values(config.getoption(flag), flag)]
                  for axis, flag in _FILTERS.items() if config.getoption(flag) is not None}
    except SpecError as exc:
        raise pytest.UsageError(str(exc)) from None
    if wanted:
        seen: dict[str, set[str]] = {axis: set() for axis in wanted}
        for item in items:
            case = _case_of(item)
            for axis in wanted if case is not None else ():
                seen[axis].add(_text(getattr(case, axis)))
        for axis, values in wanted.items():
            unknown = [v for v in values if v not in seen[axis]]
            if unknown:  # a typo would otherwise deselect every test, exit 5, and say nothing
                raise pytest.UsageError(console_safe(
                    f"{_FILTERS[axis]}: {', '.join(unknown)} matches no collected case (valid here: "
                    f"{', '.join(sorted(seen[axis])) or 'none: no benchbed case was collected'})", keep_newlines=False))
        keep, drop = [], []
        for item in items:
            case = _case_of(item)
            if case is not None and any(_text(getattr(case, axis)) not in values for axis, values in wanted.items()):
                drop.append(item)
            else:
                keep.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    launcher = config.getoption("--benchbed-launcher")
    if config.getoption("--benchmark") and launcher is not None:
        from .execute.launchers import launcher_names

        if launcher not in launcher_names():  # after collection: a suite module may register one
            raise pytest.UsageError(console_safe(f"--benchbed-launcher: unknown launcher {launcher!r} (valid: "
                                                 f"{', '.join(launcher_names())})", keep_newlines=False))
    if not config.getoption("--benchmark"):
        skip = pytest.mark.skip(reason="benchbed cases run only with --benchmark")
        for item in items:
            if "benchbed" in item.fixturenames or item.get_closest_marker("benchbed"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def benchbed_session(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Any:
    """The run all cases of this pytest session share: one run id, one results folder."""
    cases = [c for c in (_case_of(item) for item in request.session.items) if c is not None]
    session = _open_session(pytestconfig, cases)
    yield session
    session.close()


def _open_session(pytestconfig: pytest.Config, cases: list[Case]) -> Any:
    from .engine import EngineConfig, Session
    from .execute.schedule import budget_rule
    from .measure import StopRule
    from .store import check_writable

    results = pytestconfig.getoption("--benchbed-results")
    problem = check_writable(results)
    if problem:
        raise pytest.UsageError(problem)
    rule = StopRule(min_time_s=pytestconfig.getoption("--benchbed-min-time"),
                    max_time_s=pytestconfig.getoption("--benchbed-max-time"))
    budget = pytestconfig.getoption("--benchbed-budget")
    if budget is not None:  # the session's share per runner: its timing caps (cells run as their tests come)
        rule = budget_rule(rule, budget, cases)
    from .runners import runner_names

    reference = pytestconfig.getoption("--benchbed-reference")
    if reference not in runner_names():
        raise pytest.UsageError(f"--benchbed-reference: unknown runner {reference!r} "
                                f"(valid: {', '.join(runner_names())})")
    try:
        return Session(results, EngineConfig(rule=rule, suite="pytest", reference=reference,
                                             isolate=pytestconfig.getoption("--benchbed-isolate")))
    except SpecError as exc:  # e.g. BENCHBED_RUN_ID that is not a plain id
        raise pytest.UsageError(str(exc)) from None


class BenchbedFixture:
    """What a suite test gets: ``benchbed.run(case)`` measures, stores and reports one case."""

    def __init__(self, session: Any, config: pytest.Config, node: pytest.Item) -> None:
        self.session = session
        self.config = config
        self.node = node

    def run(self, case: Case) -> dict[str, Any]:
        from .models import check_model
        from .runners import check_runner_families, runner_names
        from .tasks import task_names

        case = case.validate(task_names(), check_model, runner_names())
        try:
            check_runner_families([(case.task, case.runner)])
        except SpecError as exc:
            pytest.fail(str(exc), pytrace=False)
        done = self.config._benchbed_done  # type: ignore[attr-defined]
        if case.case_id not in done:
            cell = [c.validate(task_names(), check_model, runner_names())
                    for c in self._cells().get(case.pair_id, [])]
            if all(c.case_id != case.case_id for c in cell):
                cell = [case]
            name = self.config.getoption("--benchbed-launcher")
            launcher = None
            if name is not None:
                from .execute.launchers import get_launcher

                launcher = get_launcher(name)
            try:
                for result in self.session.run(cell, passes=[0], launcher=launcher):
                    done[result.case.case_id] = result
            finally:
                if launcher is not None:
                    launcher.close()
        result = done.pop(case.case_id)
        rec = result.record
        self.config._benchbed_records.append(rec)  # type: ignore[attr-defined]
        if rec["status"] == "ok":
            self._feed(result.samples, rec, case.label)
        if rec["status"] == "skipped":
            pytest.skip(rec["message"])
        if rec["status"] == "oom":  # an answer (this batch does not fit), recorded as data
            pytest.skip(f"out of memory at batch {rec['batch_size']}: {rec['message']}")
        if rec["status"] != "ok":
            pytest.fail(f"{rec['status']}: {rec['message']}", pytrace=False)
        if rec["parity_ok"] is False:
            pytest.fail(f"PARITY MISMATCH between {rec['runner']} and the reference {rec['reference']}: "
                        f"{rec['parity_detail']}", pytrace=False)
        return rec

    def _cells(self) -> dict[str, list[Case]]:
        """The runners of each cell among the tests this session runs (after -k, -m and the axis
        filters), so the first test of a cell measures them all together, interleaved in one
        window, and the cell's other tests report their records."""
        cells: dict[str, list[Case]] = self.config._benchbed_cells  # type: ignore[attr-defined]
        if not cells:
            for item in self.node.session.items:
                case = _case_of(item)
                if case is not None:
                    cell = cells.setdefault(case.canonical().pair_id, [])
                    if all(c.runner != case.runner for c in cell):
                        cell.append(case)
        return cells

    def _feed(self, samples: tuple[float, ...], rec: dict[str, Any], label: str) -> None:
        """Keep the record's raw samples for ``--benchmark-json`` (one group per cell, so
        pytest-benchmark's tools put the runners of a cell side by side)."""
        from .benchmark_json import benchmark_entry

        group = f"{rec['task']} {rec['model']} {rec['device']} {rec['dtype']} b{rec['batch_size']} s{rec['seq_len']}"
        self.config._benchbed_bench.append(  # type: ignore[attr-defined]
            benchmark_entry(rec, samples, self.node.name, self.node.nodeid, group, label))


@pytest.fixture
def benchbed(request: pytest.FixtureRequest, benchbed_session: Any) -> BenchbedFixture:
    """Measure benchbed cases inside a test: ``benchbed.run(case)``."""
    return BenchbedFixture(benchbed_session, request.config, request.node)


def _benchmark_json_path(config: pytest.Config) -> str | None:
    """pytest-benchmark's ``--benchmark-json`` (a path, or an open file in its 4.x releases)."""
    try:
        value = config.getoption("--benchmark-json")
    except ValueError:  # pytest-benchmark is not installed
        return None
    if value is None:
        return None
    return os.fspath(value if isinstance(value, (str, os.PathLike)) else value.name)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # after pytest-benchmark wrote its file at session finish: our benchmarks are added to it
    entries = getattr(config, "_benchbed_bench", [])
    path = _benchmark_json_path(config)
    if entries and path:
        from .benchmark_json import write_benchmark_json

        write_benchmark_json(path, entries)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    records = getattr(config, "_benchbed_records", [])
    if not records:
        return
    from .summary import format_table

    tr = terminalreporter
    tr.section("benchbed: every runner of a cell against the reference (median ms, ratio with its 95% CI)")
    for line in format_table(records).splitlines():
        tr.write_line(line)
    session = records[0]["run_id"]
    tr.write_line(console_safe(f"{len(records)} records, run {session}, in {config.getoption('--benchbed-results')}",
                               keep_newlines=False))

