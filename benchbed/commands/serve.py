"""``benchbed serve``: one runner of one case behind benchbed's HTTP server, in the foreground until
Ctrl-C — the server ``--scenario http`` starts per runner, started by hand, so another tool (or
``benchbed run --endpoint NAME=URL --endpoint-protocol benchbed``) can measure it as a service."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from ..validate import arg, positive_int
from .common import EXIT_OK, non_negative_int

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve one runner over HTTP on the loopback address until Ctrl-C",
                       description="Start benchbed's HTTP server for one runner of one case (POST /v1/run with "
                                   '{"inputs": [...]}, GET /health) and keep it up until Ctrl-C; measure it with '
                                   "benchbed run --endpoint NAME=URL --endpoint-protocol benchbed.")
    p.add_argument("--task", default="text-classification", help="the task (default: text-classification)")
    p.add_argument("--model", default="minilm", help="the model (default: minilm)")
    p.add_argument("--runner", default="torch", help="the runner (default: torch)")
    p.add_argument("--dtype", default="fp32", help="the precision (default: fp32)")
    p.add_argument("--seq-len", type=arg(positive_int, "--seq-len"), default=128,
                   help="the truncation length the runner is built for (default: 128)")
    p.add_argument("--workers", type=arg(positive_int, "--workers"), default=1,
                   help="uvicorn worker processes, each with its own model (default: 1)")
    p.add_argument("--threads", type=arg(positive_int, "--threads"), help="torch threads per worker")
    p.add_argument("--seed", type=arg(non_negative_int, "--seed"), default=0,
                   help="seed of synthetic weights (default: 0)")


def main(args: argparse.Namespace) -> int:
    from ..execute.config import EngineConfig
    from ..models import check_model, check_model_source
    from ..runners import get_runner
    from ..serving.server import HttpServer
    from ..spec import Case, SpecError
    from ..tasks import get_task, task_names

    if args.task not in task_names():
        raise SpecError(f"unknown task {args.task!r} (valid: {', '.join(task_names())})")
    check_model(args.model)
    check_model_source(args.model)
    get_runner(args.runner, args.task)
    task = get_task(args.task)
    if getattr(task, "trains", False):
        raise SpecError(f"benchbed serve serves inference tasks; {args.task} is a training task")
    case = Case(task=args.task, model=args.model, runner=args.runner, dtype=args.dtype, seq_len=args.seq_len)
    case = case.validate()
    config = EngineConfig(seed=args.seed, threads=args.threads)
    inputs = _one_input(case, config)
    spec = {"case": case, "inputs": inputs, "config": config, "threads": args.threads}
    stop = {"now": False}

    def on_term(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    print(f"benchbed serve: starting {args.runner} ({args.task}, {args.model}) with {args.workers} worker(s)...",
          file=sys.stderr)
    with HttpServer(spec, args.workers) as server:
        print(f"benchbed serve: {server.url} (POST /v1/run, GET /health); Ctrl-C stops it", file=sys.stderr)
        print(server.url, flush=True)
        try:
            while not stop["now"] and server.alive():
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        if not server.alive():
            print(f"benchbed serve: the server stopped: {server.log_tail()}", file=sys.stderr)
            return 1
    return EXIT_OK


def _one_input(case: Any, config: Any) -> list[Any]:
    """One seeded input of the case, the batch the server's runner is built with."""
    from ..execute.workbench import Workbench, setup_process
    from ..tasks import get_task

    setup_process(config)
    task = get_task(case.task).configure(case)
    bundle = Workbench(config.seed, config.trust_remote_code).bundle(case, task)
    return list(task.make_inputs(bundle.tokenizer, 1, case.seq_len, config.seed))
