"""Records and reports of two checkouts, column for column: a refactor must not change what users get.

    python scripts/compare_outputs.py BASE_REV [NEW_REV]      # NEW_REV: the working tree

Each side runs ``benchbed run --quick`` (the tiny bert-tiny matrix, short time limits, one pass) from
its own copy of the code into its own results folder, then ``benchbed report``. Compared:

- records: the column names and Arrow types in order, the schema version, and per case (by case id)
  every column that does not depend on timing or the moment (identity, status, parity, options,
  sample counts aside);
- reports: the section titles, table headers and figure captions, in order.

Exits 0 when both agree, 1 listing the differences. Timing values are weather and are not compared.
"""

from __future__ import annotations

import html.parser
import os
import subprocess
import sys
import tempfile

import pyarrow.parquet as pq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Columns that are the same when the code is the same (everything else is timing or the moment).
STABLE = ["schema_version", "case_id", "pair_id", "suite", "reference", "pairing", "task", "model", "model_params",
          "model_config", "runner", "device", "dtype", "batch_size", "seq_len", "new_tokens", "attn_impl", "options",
          "scenario", "status", "parity_ok", "message"]
QUICK = ["--quick", "--warmup", "1", "--min-time", "0.2", "--max-time", "0.6", "--quiet"]


class _Outline(html.parser.HTMLParser):
    """Section titles, table headers and figure captions of a report page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[str] = []
        self._tag: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("h2", "th", "figcaption"):
            self._tag, self._text = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._tag:
            self.items.append(f"{tag}: {''.join(self._text).strip()}")
            self._tag = None

    def handle_data(self, data: str) -> None:
        if self._tag:
            self._text.append(data)


def _checkout(rev: str | None, where: str) -> str:
    if rev is None:
        return REPO
    subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", "-f", where, rev], check=True,
                   capture_output=True)
    return where


def _side(code: str, out: str) -> tuple[object, list[str]]:
    env = {**os.environ, "PYTHONPATH": code}
    results, page = os.path.join(out, "results"), os.path.join(out, "report.html")
    cmd = [sys.executable, "-c", "import sys; from benchbed.cli import main; sys.exit(main())"]
    subprocess.run(cmd + ["run", *QUICK, "--results", results, "--run-id", "cmp"], check=True, env=env, cwd=out)
    subprocess.run(cmd + ["report", results, "-o", page], check=True, env=env, cwd=out, capture_output=True)
    table = pq.read_table(os.path.join(results, "cmp"))
    parser = _Outline()
    with open(page, encoding="utf-8") as fh:
        parser.feed(fh.read())
    return table, parser.items


def compare(base: tuple[object, list[str]], new: tuple[object, list[str]]) -> list[str]:
    (bt, bo), (nt, no) = base, new
    out = []
    bs, ns = [(f.name, str(f.type)) for f in bt.schema], [(f.name, str(f.type)) for f in nt.schema]
    if bs != ns:
        out.append(f"record columns differ: only base {sorted(set(bs) - set(ns))}, only new {sorted(set(ns) - set(bs))}")
    cols = [c for c in STABLE if c in bt.column_names and c in nt.column_names]
    brow = {r["case_id"]: r for r in bt.select(cols).to_pylist()}
    nrow = {r["case_id"]: r for r in nt.select(cols).to_pylist()}
    if set(brow) != set(nrow):
        out.append(f"cases differ: only base {sorted(set(brow) - set(nrow))}, only new {sorted(set(nrow) - set(brow))}")
    for cid in sorted(set(brow) & set(nrow)):
        for c in cols:
            if brow[cid][c] != nrow[cid][c]:
                out.append(f"case {cid} column {c}: base {brow[cid][c]!r}, new {nrow[cid][c]!r}")
    if bo != no:
        out.append("report outline differs:\n  base: " + "\n        ".join(bo) + "\n  new:  " + "\n        ".join(no))
    return out


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bb-compare-") as tmp:
        sides = []
        for k, rev in enumerate([argv[0], argv[1] if len(argv) > 1 else None]):
            work = os.path.join(tmp, f"side{k}")
            os.makedirs(work)
            code = _checkout(rev, os.path.join(tmp, f"code{k}"))
            print(f"side {k}: {rev or 'working tree'}", file=sys.stderr, flush=True)
            try:
                sides.append(_side(code, work))
            finally:
                if code != REPO:
                    subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", code], capture_output=True)
        problems = compare(*sides)
    for line in problems:
        print(line)
    print(f"{'same' if not problems else 'DIFFERENT'}: {len(sides[0][0])} records, {len(sides[0][1])} report items")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
