"""Shared fixtures: a module-scoped engine session on the tiny preset, and a fast stop rule."""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: this test session's cache folder, made by `pytest_configure` (None: another session's, inherited)
_OWN_CACHE: str | None = None


def _scratch_name() -> str:
    """This process's name as benchbed's scratch folders spell it (``benchbed-<pid>-<start
    ticks>``, `benchbed.scratch`), read here rather than imported: benchbed must not be imported
    before the caches are pointed at the session's folder."""
    with open("/proc/self/stat", "rb") as fh:
        text = fh.read().decode("ascii", "replace")
    return f"benchbed-{os.getpid()}-{int(text[text.rindex(')') + 2:].split()[19])}"


def _own_cache() -> None:
    """Caches that libraries keep under ~/.cache (onnxruntime's telemetry database since 1.32,
    matplotlib's font list) go to a folder of this test session: the suite leaves the home as it
    was. Made when pytest configures, before any test module imports benchbed, and not when this
    file is merely imported (a script importing a helper from it left the folder behind)."""
    global _OWN_CACHE
    if "BENCHBED_TEST_CACHE" in os.environ:
        return
    import tempfile

    # named for its owner (pid and start time, as benchbed's scratch folders are), so that another
    # test session's folder still in use is told from one left behind (`_ours_in_tmp`)
    prefix = f"benchbed-test-cache-{_scratch_name()}-"
    os.environ["BENCHBED_TEST_CACHE"] = os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix=prefix)
    _OWN_CACHE = os.environ["BENCHBED_TEST_CACHE"]
    # torch.compile's cache (else /tmp/torchinductor_USER) goes with it
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(_OWN_CACHE, "torchinductor"))


def _measured_slow() -> set[str]:
    """Node ids listed in tests/slow_tests.txt (each measured at 15 s or more)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow_tests.txt")
    with open(path, encoding="utf-8") as fh:
        return {line.split("#", 1)[0].strip() for line in fh if line.split("#", 1)[0].strip()}


def pytest_collection_modifyitems(config, items):
    """Mark `slow` the tests measured slow (tests/slow_tests.txt): the README's command runs the
    rest (``pytest -m "not slow"``), `.ci/run` runs these after it."""
    slow = _measured_slow()
    for item in items:
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)


def pytest_unconfigure(config):
    """The session's cache folder goes with the session, whatever ran (a --collect-only too)."""
    if _OWN_CACHE:
        import shutil

        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


def pytest_configure(config):
    """pytest's own temporary folders (else /tmp/pytest-of-USER) live in this session's cache
    folder too, so that the suite leaves /tmp as it found it."""
    _own_cache()
    if _OWN_CACHE and config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = os.path.join(_OWN_CACHE, "pytest")


#: a test session's cache folder: ``benchbed-test-cache-`` + its owner's scratch name + a random tail
_TEST_CACHE = re.compile(r"^benchbed-test-cache-(benchbed-\d+-\d+)-")


def _ours_in_tmp() -> set[str]:
    """What benchbed or this suite may leave in the temporary folder."""
    import tempfile

    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return set()
    from benchbed.scratch import owner_alive

    # torch's own compile cache (torchinductor_USER) and Ray's session folder are the libraries'
    # caches, not ours: a process that does not inherit the suite's settings may still write them
    # a folder whose owner still runs (a scratch folder, another test session's cache) is in use,
    # not left behind: the owner removes it when it ends
    def in_use(name: str) -> bool:
        owner = _TEST_CACHE.match(name)
        return owner_alive(owner.group(1) if owner else name)

    return {n for n in names if n.startswith(("benchbed-", "pytest-of-"))
            and os.path.join(base, n) != _OWN_CACHE and not in_use(n)}


@pytest.fixture(scope="session", autouse=True)
def the_home_is_left_as_it_was():
    """The test suite must not change how the user's later tools behave: nothing it runs (Ray's
    token and sessions, caches of our own) may appear in the home folder's dot-folders."""
    home = os.path.expanduser("~")
    watched = [".ray", ".benchbed", os.path.join(".cache", "Microsoft")]
    before = {name: os.path.exists(os.path.join(home, name)) for name in watched}
    checkout = set(os.listdir(REPO))
    tmp_before = _ours_in_tmp()
    yield
    left = sorted(_ours_in_tmp() - tmp_before)
    # nor in the checkout: a test that writes a relative path from the repository's folder would
    # leave files that `git add -A` then commits
    new = sorted(set(os.listdir(REPO)) - checkout - {".pytest_cache", "__pycache__", ".benchmarks", "results",
                                                     "reports", ".hypothesis"})
    assert not new, f"the test suite wrote {new[:10]} into the checkout {REPO}"
    after = {name: os.path.exists(os.path.join(home, name)) for name in watched}
    created = [name for name in watched if after[name] and not before[name]]
    if _OWN_CACHE:
        import shutil

        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
    assert not created, f"the test suite created {created} in {home}"
    assert not left, f"the test suite left {left[:10]} in the temporary folder"


@pytest.fixture(scope="session")
def fast_rule():
    from benchbed.measure import StopRule

    return StopRule(warmup=1, min_samples=3, min_time_s=0.02, max_time_s=0.5)


@pytest.fixture
def tiny_session(tmp_path, fast_rule):
    from benchbed.engine import EngineConfig, Session

    return Session(str(tmp_path / "results"), EngineConfig(rule=fast_rule, phase_calls=2))


def run_cli(*args: str, cwd: str | None = None, timeout: float = 600, env: dict | None = None):
    """The real `benchbed` console entry, in a subprocess."""
    import subprocess

    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "benchbed.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout, env=full_env)


def on_a_quiet_machine(measure, tries: int = 3):
    """`measure()` run until a run is not marked interfered (another process using the CPU, as
    benchbed itself detects it), at most `tries` times; a machine busy every time skips the test
    with the reason instead of loosening its assertion. Timing tests compare against known work,
    and a busy CI neighbour changes the work's duration, not the timer's correctness."""
    from benchbed.measure.interference import Interference

    reason = None
    for _ in range(tries):
        with Interference() as watch:
            result = measure()
        reason = watch.reading.reason if watch.reading else None
        if reason is None:
            return result
        time.sleep(1.0)
    pytest.skip(f"the machine stayed busy over {tries} tries: {reason}")


def interfered(records) -> bool:
    """Whether any of `records` (dicts or a DataFrame) says another process used the machine while
    it was measured: benchbed's own promise is "the numbers agree, or the record says so"."""
    rows = records.to_dict("records") if hasattr(records, "to_dict") else list(records)
    return any(bool(r.get("interfered")) for r in rows)


def holds_or_interfered(measure, check):
    """Run `measure()` and `check(result)` (which returns an error message, or None when the timing
    relation holds). When it does not hold and the records say they were interfered with, measure
    once more; a relation that still does not hold must then be marked interfered, never silent.
    Returns the last result. `measure` returns (result, records)."""
    result, records = measure()
    problem = check(result)
    if problem is None:
        return result
    assert interfered(records), f"{problem}, and the records do not say the machine was busy"
    result, records = measure()
    problem = check(result)
    assert problem is None or interfered(records), f"{problem} (re-measured), and the records do not say so"
    return result


def holds_or_busy(problem, tries: int = 2) -> None:
    """A timing relation measured by `problem()` (an error message, or None when it holds) under
    benchbed's own interference reading: it holds, or the reading says the machine was busy, and
    is then measured again (at most `tries` times), never passing silently."""
    from benchbed.measure.interference import Interference

    for _ in range(tries):
        with Interference() as watch:
            found = problem()
        if found is None:
            return
        busy = watch.reading.reason if watch.reading else None
        assert busy, f"{found}, and the interference reading does not say the machine was busy"

