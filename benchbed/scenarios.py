"""Scenario registry: how a cell drives its runners, declared once per scenario and asked by every
layer (spec checks names and options, the matrix expands variants, the engine builds the driver,
the console labels lines, the report draws the scenario's section) instead of testing names.

A scenario is a `Scenario` declaration. The built-ins (``latency``, ``dataset``, ``server``) live
in ``benchbed.execute.drivers``; a plugin registers its own with `register_scenario` (from a suite
file, or the ``benchbed.scenarios`` entry point). The driver and report section may be given as
objects or as ``"module:attribute"`` text, loaded when first needed, so this module imports nothing
of benchbed but `benchbed.plugins` and any layer may ask it.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .plugins import EntryPoints
from .values import SpecError

__all__ = ["Scenario", "register_scenario", "get_scenario", "scenario_names", "scenario_of_record",
           "DEFAULT_SCENARIO", "load", "declared_columns", "options_owned"]

#: The scenario of a case that names none (and of records older than the scenario column).
DEFAULT_SCENARIO = "latency"
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Scenario:
    """What a scenario is to every layer.

    - `driver`: the class that drives a cell's runners (`benchbed.execute.drivers.Driver`).
    - `sample`: what one timed sample is: ``call`` (one call on one batch), ``pass`` (one pass over a
      dataset) or ``request`` (one request's latency under load); runners and the report ask this.
    - `options`: the case options it takes (a suite's ``options`` table, a command line's settings);
      an option of another scenario given without it is refused.
    - `variants`: the option sets it expands into, from the matrix's `Workload` (default: one, empty).
    - `columns`: record columns it adds, ``(name, arrow type)`` (``float64``, ``int64``, ``string``,
      ``bool``, ``list<float64>``); built-in columns are already in the schema.
    - `label`: the short tag of a record in console lines (default: the name).
    - `summary`: the result part of a progress line (default: the median latency).
    - `section`: ``(latest records) -> (title, html) | None``, the report section of its records.
    """

    name: str
    description: str
    driver: Any
    sample: str = "call"
    options: tuple[str, ...] = ()
    variants: Callable[[Any], list[tuple[tuple[str, Any], ...]]] | None = None
    columns: tuple[tuple[str, str], ...] = ()
    label: Callable[[Mapping[str, Any]], str] | None = None
    summary: Callable[[Mapping[str, Any], str], str | None] | None = None
    section: Any = None

    def driver_class(self) -> Any:
        return load(self.driver)

    def section_builder(self) -> Callable[[Any], tuple[str, str] | None] | None:
        return load(self.section) if self.section is not None else None

    def expand(self, workload: Any) -> list[tuple[tuple[str, Any], ...]]:
        return self.variants(workload) if self.variants is not None else [()]

    def tag(self, options: Mapping[str, Any]) -> str:
        return self.label(options) if self.label is not None else self.name


_REGISTRY: dict[str, Scenario] = {}


def load(ref: Any) -> Any:
    """An object, or the attribute a ``"module:attribute"`` text names."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _caller_module() -> str:
    """The module that called `register_scenario` (the one declaring the scenario)."""
    import sys

    frame = sys._getframe(2)
    return str(frame.f_globals.get("__name__", ""))


def register_scenario(scenario: Scenario) -> Scenario:
    """Add (or replace) a scenario under its name."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"register_scenario takes a benchbed.scenarios.Scenario, got {scenario!r:.80}")
    if not _NAME.fullmatch(scenario.name):
        raise ValueError(f"scenario name must be 1-32 of a-z 0-9 _ - starting with a letter, got {scenario.name!r}")
    if scenario.sample not in ("call", "pass", "request"):
        raise ValueError(f"scenario sample must be call, pass or request, got {scenario.sample!r}")
    owner = _caller_module()
    if scenario.name in BUILTIN_SCENARIOS and not owner.startswith("benchbed.execute.drivers"):
        raise SpecError(f"scenario {scenario.name!r} is a built-in scenario's name; a plug-in chooses another "
                        f"(built-ins: {', '.join(BUILTIN_SCENARIOS)})")
    _REGISTRY[scenario.name] = scenario
    return scenario


_installed = EntryPoints("benchbed.scenarios", register_scenario)

#: the built-in scenarios, declared beside their drivers and found the way a plug-in is, by name:
#: this module imports none of them (a registry low in the house does not load its top)
BUILTIN_SCENARIOS = {name: f"benchbed.execute.drivers.{name}:SCENARIO"
                     for name in ("latency", "dataset", "server", "http")}


def _load_all() -> None:
    if not _installed.loaded:
        for ref in BUILTIN_SCENARIOS.values():
            load(ref)  # registers itself
        _installed.load()


def scenario_names() -> list[str]:
    """Registered scenario names, built-ins first."""
    _load_all()
    return sorted(_REGISTRY, key=lambda n: n != DEFAULT_SCENARIO)


def get_scenario(name: str) -> Scenario:
    """The scenario registered as `name`; a `KeyError` naming the valid ones otherwise (spec turns
    it into a `SpecError`)."""
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown scenario {name!r} (valid: {', '.join(scenario_names())})")
    return _REGISTRY[name]


def scenario_of_record(rec: Mapping[str, Any]) -> str:
    """A record's scenario name (`DEFAULT_SCENARIO` for records older than the column)."""
    value = rec.get("scenario")
    return value if isinstance(value, str) and value else DEFAULT_SCENARIO


def options_owned() -> dict[str, list[str]]:
    """Option name -> the scenarios that take it."""
    _load_all()
    out: dict[str, list[str]] = {}
    for s in _REGISTRY.values():
        for opt in s.options:
            out.setdefault(opt, []).append(s.name)
    return out


def declared_columns() -> list[tuple[str, str]]:
    """Every registered scenario's declared record columns, ``(name, arrow type)``."""
    _load_all()
    return [c for s in _REGISTRY.values() for c in s.columns]
