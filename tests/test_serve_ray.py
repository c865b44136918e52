"""Ray Serve as a serving backend (``--serve ray``): the same runner as a Ray Serve application,
driven over HTTP the way the uvicorn backend is, its replicas named in the record, nothing of
Ray's left running or in /tmp and the home."""

from __future__ import annotations

import pandas as pd
import psutil
import pytest

from conftest import run_cli

TINY = ("--model", "synthetic:bert-tiny", "--dtype", "fp32", "--batch-size", "1", "--seq-len", "16")


@pytest.mark.slow
def test_serve_ray_deploys_replicas_and_names_them(tmp_path):
    pytest.importorskip("ray.serve")
    pytest.importorskip("aiohttp")  # the load generator
    import shutil
    import tempfile

    results = tmp_path / "results"
    # Ray's sessions and token stay out of /tmp/ray and the home (a short folder: Ray's socket
    # paths have a length limit); CI's /tmp had a /tmp/ray session of this test's after the run
    short = tempfile.mkdtemp(prefix="bbrs", dir="/tmp")
    try:
        p = run_cli("run", "--task", "text-classification", *TINY, "--runner", "torch", "--scenario", "http",
                    "--serve", "ray", "--replicas", "2", "--rate", "10", "--requests", "20", "--results",
                    str(results), timeout=400, env={"RAY_ADDRESS": "", "RAY_TMPDIR": short, "TMPDIR": short,
                                                    "HOME": str(tmp_path)})
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert p.returncode == 0, p.stderr[-2000:]
    row = pd.read_parquet(results).iloc[0]
    assert row.status == "ok" and row.parity_ok and row.serve_backend == "ray" and row.replicas == 2
    assert len(str(row.serve_replicas).split(",")) == 2 and row.completed == 20
    assert not [p for p in psutil.Process().children(recursive=True) if "ray" in p.name()]
