"""A matrix over a real (local) Ray cluster: one task per cell, records written by the driver as
they arrive, a worker that really dies retried then recorded, resuming a run, and the refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO, run_cli

ray = pytest.importorskip("ray")

FAST = ["--min-time", "0.05", "--max-time", "0.3"]


@pytest.fixture(autouse=True, scope="module")
def ray_state_outside_the_home():
    """Ray keeps a token, sessions and temp folders in the home and /tmp/ray: every test here runs
    with HOME, RAY_TMPDIR and TMPDIR in one temporary folder (short: Ray's socket paths have a
    length limit), so the suite leaves the user's home as it was and a later `ray start` behaves as
    before. TMPDIR: a cluster's dashboard starts its modules through a multiprocessing forkserver
    whose listener folder (`pymp-*`) is left in /tmp when the cluster is shut down (three per
    run of this file, found with a logging `get_temp_dir` on 2026-12-07)."""
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="bbray", dir="/tmp")
    saved = {k: os.environ.get(k) for k in ("HOME", "RAY_TMPDIR", "TMPDIR")}
    os.makedirs(os.path.join(base, "home"))
    os.environ.update(HOME=os.path.join(base, "home"), RAY_TMPDIR=base, TMPDIR=base)
    try:
        yield base
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(base, ignore_errors=True)


def test_benchbeds_own_local_cluster_writes_no_token_into_the_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"RAY_ADDRESS": "", "HOME": str(home)}
    for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env[k] = ""
    p = run_cli("run", "--quick", "--task", "fill-mask", "--runner", "torch", "--batch-size", "1", "--seq-len", "16",
                "--cluster", "ray", *FAST, "--results", str(tmp_path / "r"), env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert not (home / ".ray").exists(), sorted(str(x) for x in home.rglob("*"))


def test_a_cluster_started_the_plain_way_takes_cells_one_node_at_a_time(tmp_path):
    """`ray start --head` with no custom resource: no node advertises benchbed_slot, so each CPU cell
    reserves all of a node's CPUs; the run says so, and no two cells overlap on the node."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        matrix = ["--quick", "--task", "fill-mask,text-classification", "--batch-size", "1", "--seq-len", "16", *FAST]
        p = run_cli("run", *matrix, "--cluster", "ray", "--results", str(tmp_path / "c"),
                    env={"RAY_ADDRESS": cluster.address})
    finally:
        cluster.shutdown()
    assert p.returncode == 0, p.stderr[-3000:]
    assert "no node advertises 'benchbed_slot'" in p.stderr and "reserves all its CPUs" in p.stderr
    df = pd.read_parquet(tmp_path / "c")
    assert len(df) == 4 and (df["status"] == "ok").all() and df["cluster_node"].notna().all()
    assert _overlaps(df) == 0


def test_a_quick_matrix_on_a_ray_cluster_is_one_run_like_a_local_one(tmp_path):
    p = run_cli("run", "--quick", "--task", "fill-mask,text-classification", "--batch-size", "1", "--seq-len", "16",
                "--cluster", "ray", *FAST, "--results", str(tmp_path / "r"), env={"RAY_ADDRESS": ""})
    assert p.returncode == 0, p.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "r")
    assert len(df) == 4 and df["run_id"].nunique() == 1 and (df["status"] == "ok").all()
    assert df["isolated"].all() and df["env_host"].notna().all()  # measured in workers, each with its node's env
    assert "[4/4]" in p.stderr and "pipe/torch [95% CI]" in p.stdout
    assert run_cli("report", str(tmp_path / "r"), "-o", str(tmp_path / "r.html")).returncode == 0


def test_a_worker_that_dies_is_retried_then_recorded_and_the_other_cells_go_on(tmp_path):
    import benchbed.calibrate  # noqa: F401 - the memory-calibration task, which can SIGKILL itself
    from benchbed.engine import EngineConfig, Session
    from benchbed.execute.launchers.ray_cluster import RayCluster
    from benchbed.measure import StopRule
    from benchbed.spec import Case

    rule = StopRule(warmup=1, min_samples=3, min_time_s=0.05, max_time_s=0.3)
    s = Session(str(tmp_path / "r"), EngineConfig(rule=rule, phase_calls=0))
    crash = Case("memory-calibration", "bert-tiny", batch_size=1, seq_len=8, options=(("alloc_mb", 1), ("crash", "true")))
    fine = Case("memory-calibration", "bert-tiny", batch_size=1, seq_len=8, options=(("alloc_mb", 2),))
    os.environ.pop("RAY_ADDRESS", None)
    cluster = RayCluster(None, retries=1)
    try:
        results = s.run([crash, fine], launcher=cluster)
    finally:
        cluster.close()
    s.close()
    by = {r.case.case_id: r.record for r in results}
    assert by[fine.canonical().case_id]["status"] == "ok"
    died = by[crash.canonical().case_id]
    assert died["status"] == "error" and "cluster worker failed after 1 retries" in died["message"]
    df = pd.read_parquet(tmp_path / "r")
    assert sorted(df["status"]) == ["error", "ok"]  # written by the driver, no shared filesystem needed


def test_an_interrupted_run_keeps_its_records_and_resume_measures_only_the_rest(tmp_path):
    results = tmp_path / "r"
    args = [sys.executable, "-m", "benchbed.cli", "run", "--quick", "--task", "fill-mask", "--batch-size", "1,4",
            "--seq-len", "16,64", "--min-time", "0.3", "--run-id", "night-7", "--results", str(results)]
    child = subprocess.Popen(args, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for line in child.stderr:
        if line.startswith("[2/"):
            break
    child.send_signal(signal.SIGINT)
    child.communicate(timeout=120)
    assert child.returncode == 130
    first = pd.read_parquet(results)
    assert 2 <= len(first) < 8
    p = run_cli("run", "--quick", "--task", "fill-mask", "--batch-size", "1,4", "--seq-len", "16,64", *FAST,
                "--resume", "night-7", "--results", str(results))
    assert p.returncode == 0, p.stderr[-2000:]
    both = pd.read_parquet(results)
    assert len(both) == 8 and not both.duplicated(["case_id", "pass_index"]).any()
    assert set(both["run_id"]) == {"night-7"}
    assert f"[{8 - len(first)}/{8 - len(first)}]" in p.stderr  # only what was missing was measured


def test_refusals_are_one_line_exit_2(tmp_path):
    from benchbed.execute.launchers.ray_cluster import RayCluster
    from benchbed.env import collect_env
    from benchbed.spec import SpecError

    for args, expected in ((["--cluster", "slurm"], "--cluster 'slurm' (valid: local, ray, ray://HOST:PORT)"),
                           (["--cluster-select", "gpu=H200"], "--cluster-select and --cluster-ship-code need --cluster ray"),
                           (["--resume", "nope"], "--resume: no run 'nope'"),
                           (["--cluster", "ray", "--cluster-select", "accelerator_type=H200"],
                            "no node advertises the resource 'accelerator_type:H200'")):
        p = run_cli("run", "--quick", "--results", str(tmp_path / "r"), *args, env={"RAY_ADDRESS": ""})
        assert p.returncode == 2 and expected in p.stderr, (args, p.stderr[-1000:])
        assert len([ln for ln in p.stderr.splitlines() if "error" in ln]) == 1
    os.environ.pop("RAY_ADDRESS", None)
    cluster = RayCluster(None)
    try:
        driver = dict(collect_env(), env_torch="0.0.1")
        with pytest.raises(SpecError, match="workers differ from the driver: .*torch"):
            cluster.check_versions(driver, allow_change=False)
        assert cluster.check_versions(driver, allow_change=True)
        assert cluster.check_versions(collect_env(), allow_change=False) == []
    finally:
        cluster.close()


@pytest.fixture
def two_nodes():
    """A real Ray cluster of two nodes on this machine, each advertising one measurement slot."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"benchbed_slot": 1}})
    worker = cluster.add_node(num_cpus=1, resources={"benchbed_slot": 1})
    cluster.wait_for_nodes()
    try:
        yield cluster, worker
    finally:
        cluster.shutdown()


def _overlaps(df):
    """Pairs of cells measured at the same time on the same node."""
    spans = df.drop_duplicates("pair_id")[["cluster_node", "cell_started_at", "cell_s"]].copy()
    spans["end"] = spans["cell_started_at"] + pd.to_timedelta(spans["cell_s"], unit="s")
    bad = 0
    for _, g in spans.groupby("cluster_node"):
        g = g.sort_values("cell_started_at")
        bad += int((g["cell_started_at"].iloc[1:].values < g["end"].iloc[:-1].values).sum())
    return bad


def test_two_nodes_share_the_cells_never_two_at_once_on_one_node_and_agree_with_a_local_run(tmp_path, two_nodes):
    cluster, _ = two_nodes
    matrix = ["--quick", "--task", "fill-mask,text-classification", "--batch-size", "1,4", "--seq-len", "16", *FAST]
    p = run_cli("run", *matrix, "--cluster", "ray", "--results", str(tmp_path / "c"), env={"RAY_ADDRESS": cluster.address})
    assert p.returncode == 0, p.stderr[-3000:]
    local = run_cli("run", *matrix, "--results", str(tmp_path / "l"))
    assert local.returncode == 0
    c, loc = pd.read_parquet(tmp_path / "c"), pd.read_parquet(tmp_path / "l")
    key = ["case_id", "status", "parity_ok"]
    assert c[key].sort_values("case_id").values.tolist() == loc[key].sort_values("case_id").values.tolist()
    assert c["cluster_node"].nunique() == 2 and loc["cluster_node"].isna().all()  # records name their node
    assert _overlaps(c) == 0


def test_a_node_lost_mid_run_is_retried_on_the_other_and_nothing_is_lost_or_doubled(tmp_path, two_nodes):
    cluster, worker = two_nodes
    args = [sys.executable, "-m", "benchbed.cli", "run", "--quick", "--task", "fill-mask,text-classification",
            "--batch-size", "1,4", "--seq-len", "16,64", "--min-time", "0.5", "--cluster", "ray", "--retries", "3",
            "--results", str(tmp_path / "r")]
    child = subprocess.Popen(args, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, RAY_ADDRESS=cluster.address))
    for line in child.stderr:
        if line.startswith("[1/"):
            break
    cluster.remove_node(worker, allow_graceful=False)  # the node and every process on it are gone
    out, err = child.communicate(timeout=600)
    assert child.returncode == 0, err[-3000:]
    df = pd.read_parquet(tmp_path / "r")
    assert len(df) == 16 and not df.duplicated(["case_id", "pass_index"]).any()
    assert (df["status"] == "ok").all()


def test_an_unreachable_cluster_is_one_line_exit_2_and_nothing_written(tmp_path):
    for where, env in ((["--cluster", "ray://127.0.0.1:1"], {}), (["--cluster", "ray"], {"RAY_ADDRESS": "127.0.0.1:9"})):
        p = run_cli("run", "--quick", *where, "--results", str(tmp_path / "r"), env=env, timeout=60)
        assert p.returncode == 2 and "cannot reach the Ray cluster" in p.stderr, p.stderr[-1000:]
        assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()
