"""``benchbed envs``: the cached environments ``--env NAME=SPEC`` builds — list them, build them
ahead of a run (a CI job can cache the folder), or remove them."""

from __future__ import annotations

import argparse
from typing import Any

from ..validate import arg, positive_float
from .common import EXIT_OK, out

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("envs", help="list, build or prune the cached environments of --env NAME=SPEC",
                       description="Environments are this one plus SPEC, built once (uv, else pip) into "
                                   "$BENCHBED_ENV_DIR (default ~/.cache/benchbed/envs) and reused while what went "
                                   "in is the same.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="each cached environment: name, SPEC, size, build time, installer")
    b = actions.add_parser("build", help="build environments now (the same --env a run takes)")
    b.add_argument("--env", action="append", metavar="NAME=SPEC", required=True, help="an environment (repeatable)")
    b.add_argument("--find-links", action="append", metavar="DIR", default=[], help="a folder of wheels")
    b.add_argument("--no-index", action="store_true", help="install from --find-links only")
    r = actions.add_parser("prune", help="remove the environments benchbed built (and its stale locks); anything "
                                        "else in the folder is left alone")
    r.add_argument("--older-than", type=arg(positive_float, "--older-than"), metavar="DAYS",
                   help="only those built more than DAYS ago (default: all)")


def main(args: argparse.Namespace) -> int:
    from ..env_cache import list_envs, prune_envs
    from ..envs import env_root, parse_env

    if args.action == "list":
        envs = list_envs()
        if not envs:
            out(f"no environments in {env_root()}")
            return EXIT_OK
        out(f"{'name':<16} {'key':<16} {'size MB':>8} {'built s':>8} {'tool':<4}  spec")
        for e in envs:
            out(f"{e['name']:<16} {e['key']:<16} {e['size_mb']:>8.1f} {e.get('built_s', 0):>8.1f} {e['tool']:<4}  "
                f"{e['spec']}")
        out(f"{len(envs)} environment(s) in {env_root()}")
    elif args.action == "build":
        from .plan import build_envs

        for built in build_envs(args, [parse_env(t) for t in args.env]):
            out(f"{built.spec.name}: {built.path} ({'cached' if built.cached else f'built in {built.built_s:.1f}s'}"
                f", packages {built.digest})")
    else:
        pruned = prune_envs(None if args.older_than is None else args.older_than * 86400)
        out(f"removed {len(pruned.removed)} environment(s) and {len(pruned.locks)} stale lock(s) from {env_root()}")
        if pruned.kept_busy:
            out(f"kept {len(pruned.kept_busy)} in use or being built: {', '.join(pruned.kept_busy)}")
        if pruned.kept_foreign:
            shown = ", ".join(pruned.kept_foreign[:5]) + (" …" if len(pruned.kept_foreign) > 5 else "")
            out(f"kept {len(pruned.kept_foreign)} entr{'y' if len(pruned.kept_foreign) == 1 else 'ies'} benchbed did "
                f"not make (never touched): {shown}")
    return EXIT_OK
