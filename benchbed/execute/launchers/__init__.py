"""Launchers: where a cell is measured. Each is a plugin with a `NAME`, registered like runners
and tasks: this process (``in-process``), a fresh subprocess per cell (``subprocess``), the default
``local`` (a subprocess for the cells that need one: CUDA cells, or every cell under
``--isolate`` or ``--case-timeout``; this process for the rest), and a Ray cluster (``ray``).

A launcher is handed a `Schedule` (what to measure next, with resume, the out-of-memory sweep and
interference retry already decided, the same for every launcher) and a callback that stores and
reports results. It measures jobs and hands their results back; it never imports the layer above
(the engine, the CLI). Adding one is a class with `NAME` and `measure` (or `run`, for one that
measures several jobs at once) plus `register_launcher`; ``tests/plugins/suite_twice_launcher.py``
defines one outside benchbed.
"""

from .base import (  # noqa: F401 - the package's public names
    BUILTIN_LAUNCHERS,
    Launcher,
    OnResults,
    check_launcher,
    get_launcher,
    launcher_names,
    register_launcher,
)

__all__ = ["Launcher", "OnResults", "register_launcher", "get_launcher", "launcher_names", "check_launcher",
           "BUILTIN_LAUNCHERS"]
