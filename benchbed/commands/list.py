"""``benchbed list``: the tasks, models, runners, precisions and devices benchbed knows."""

from __future__ import annotations

import argparse
from typing import Any

from ..spec import ATTN_IMPLS, DTYPES
from .common import EXIT_OK

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    sub.add_parser("list", help="list tasks, models, runners, precisions and devices",
                   description="List the tasks, models, runners, precisions and devices benchbed knows.")


def main(args: argparse.Namespace) -> int:
    from ..models import describe_models
    from ..runners import runner_descriptions
    from ..tasks import get_task, task_names

    print("tasks:")
    for name in task_names():
        print(f"  {name:<24} {get_task(name).description}")
    print("models:")
    for name, desc in describe_models():
        print(f"  {name:<34} {desc}")
    print("runners:")
    for name, desc in runner_descriptions("inference").items():
        print(f"  {name:<14} {desc}")
    print("runners of the training tasks (train-*: docs/training.md):")
    for name, desc in runner_descriptions("training").items():
        print(f"  {name:<14} {desc}")
    print(f"dtypes: {', '.join(DTYPES)}")
    print(f"attn_impl: default, {', '.join(ATTN_IMPLS)} (those needing a package not installed give skipped records)")
    print("compiled: false, true (torch.compile; compile time recorded apart from latency)")
    print("devices: cpu, cuda, cuda:N, mps (a device this machine lacks gives skipped records)")
    from ..scenarios import get_scenario, scenario_names
    from ..workloads.sources import CORPORA, REAL_INPUT_TASKS

    print("scenarios (docs/workloads.md):")
    for name in scenario_names():
        print(f"  {name:<14} {get_scenario(name).description}")
    print(f"inputs: {', '.join('corpus:' + c for c in CORPORA)}, FILE[#column] (.jsonl .json .csv .tsv .parquet .txt), "
          f"a folder of images or .wav files, hf:NAME[:SPLIT]#column; for {', '.join(REAL_INPUT_TASKS)}")
    from ..serving.protocols import get_protocol, protocol_names

    print("endpoint protocols (--endpoint NAME=URL --endpoint-protocol P: docs/serving.md):")
    for name in protocol_names():
        cls = get_protocol(name)
        print(f"  {name:<14} {cls.DESCRIPTION} [{', '.join(cls.TASKS)}]")
    return EXIT_OK


