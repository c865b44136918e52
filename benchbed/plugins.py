"""Installed plug-ins: each registry (tasks, runners, scenarios, launchers) loads its entry-point
group once, on first use, through one `EntryPoints`; a plug-in in a suite file or a test registers
itself when imported instead."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Callable

__all__ = ["EntryPoints"]


class EntryPoints:
    """The entry points of `group`, each handed to `register` once (an entry point may name one
    object or a list of them)."""

    def __init__(self, group: str, register: Callable[[Any], Any]) -> None:
        self.group, self.register, self.loaded = group, register, False

    def load(self) -> None:
        if self.loaded:
            return
        self.loaded = True
        for ep in entry_points(group=self.group):
            found = ep.load()
            for obj in found if isinstance(found, (list, tuple)) else [found]:
                self.register(obj)
