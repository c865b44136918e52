"""Regression thresholds: a default, overridden per metric and per case pattern.

A rule is ``[METRIC:][PATTERN=]VALUE`` — ``5%``, ``0.05``, ``p99:10%``, ``ratio:3%``, ``fill-mask*=8%``,
``median:*b1 s16=15%``. PATTERN is an fnmatch pattern over the case label
(``task model runner device dtype bN sN``); the last matching rule wins.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from ..measure.stats import STATISTICS
from ..spec import SpecError

__all__ = ["Rule", "Thresholds", "parse_rule", "read_rules", "METRICS", "RATIO", "RATIO_THRESHOLD"]

#: The metric that judges each runner's per-block ratio to its cell's reference (not a latency).
RATIO = "ratio"
#: The ratio's default threshold (a latency statistic's is 5%): the ratio is steadier than either latency.
RATIO_THRESHOLD = 0.03
#: What the gate can judge: a latency statistic, or the ratio.
METRICS = (*STATISTICS, RATIO)

_RULE = re.compile(r"^(?:(?P<metric>[a-z0-9]+):)?(?:(?P<pattern>.+)=)?(?P<value>[0-9]{1,6}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})(?P<pct>%?)$")


@dataclass(frozen=True)
class Rule:
    metric: str | None
    pattern: str | None
    value: float

    def matches(self, metric: str, label: str) -> bool:
        return (self.metric in (None, metric)) and (self.pattern is None or fnmatch.fnmatchcase(label, self.pattern))


#: the largest threshold a rule may set (a change of 1000% is no longer a regression to gate)
MAX_THRESHOLD = 10.0


def parse_rule(text: str) -> Rule:
    m = _RULE.match(str(text).strip())
    if not m or (m.group("pattern") is not None and not m.group("pattern").strip()):
        raise SpecError(f"threshold {text!r} must look like [METRIC:][PATTERN=]VALUE, e.g. 5%, p99:10%, fill-mask*=8%")
    metric = m.group("metric")
    if metric is not None and metric not in METRICS:
        raise SpecError(f"unknown metric {metric!r} in threshold {text!r} (valid: {', '.join(METRICS)})")
    value = float(m.group("value")) / (100 if m.group("pct") else 1)
    if not 0 < value < MAX_THRESHOLD:
        raise SpecError(f"threshold {text!r} must be a positive fraction or percentage below "
                        f"{100 * MAX_THRESHOLD:.0f}%")
    return Rule(metric, m.group("pattern"), value)


def read_rules(path: str) -> list[Rule]:
    """The rules of a thresholds file: one per line, blank lines and ``#`` comments skipped; a bad
    line is a `SpecError` naming the file and line."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise SpecError(f"--thresholds: no file {path!r}") from None
    except UnicodeDecodeError:
        raise SpecError(f"--thresholds: {path!r} is not UTF-8 text") from None
    except OSError as exc:
        raise SpecError(f"--thresholds: {path!r} cannot be read: {exc.strerror or exc}") from None
    rules = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            rules.append(parse_rule(text))
        except SpecError as exc:
            raise SpecError(f"--thresholds {path}:{n}: {exc}") from None
    return rules


@dataclass(frozen=True)
class Thresholds:
    default: float = 0.05
    rules: tuple[Rule, ...] = ()

    @classmethod
    def parse(cls, texts: list[str] | None, default: float = 0.05, files: list[str] | None = None) -> "Thresholds":
        """Rules from `files` (``benchbed noise`` writes them) first, then `texts`: the last rule
        that matches a case wins, so a command line's rule overrides a file's."""
        rules = [rule for path in files or () for rule in read_rules(path)]
        return cls(default, tuple(rules) + tuple(parse_rule(t) for t in texts or ()))

    def for_case(self, metric: str, label: str) -> float:
        value = self.default
        for rule in self.rules:
            if rule.matches(metric, label):
                value = rule.value
        return value
