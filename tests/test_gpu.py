"""GPU measurement: CUDA-event timing, allocator and NVML memory, energy, OOM on the device.

The CUDA tests skip cleanly where there is no GPU (CI); `scripts/gpu_check.py` runs the same
checks, and more, on a real one. The NVML device mapping is pure logic and runs everywhere.
"""

from __future__ import annotations

import pytest

import benchbed.calibrate  # noqa: F401 - registers the memory-calibration task
from benchbed.measure.gpu import NvmlSampler, nvml_handle, visible_entry

torch = pytest.importorskip("torch")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("visible, index, expected", [
    (None, 1, 1),                           # unset: torch's numbering is NVML's
    ("2,0", 0, 2),                          # renumbered
    ("2,0", 1, 0),
    ("2,0", 2, None),                       # beyond the list
    ("GPU-8f6e,1", 0, "GPU-8f6e"),          # UUID entries
    ("MIG-1234", 0, "MIG-1234"),
    ("1,-1,0", 1, None),                    # the list ends at -1, as in the CUDA runtime
    ("1,bogus,0", 1, None),                 # ... and at the first invalid entry
    ("", 0, None),                          # empty: no device visible
])
def test_cuda_visible_devices_maps_to_the_physical_gpu(visible, index, expected):
    assert visible_entry(index, visible) == expected


def test_nvml_parts_are_inert_without_a_gpu():
    assert nvml_handle("cpu") is None
    with NvmlSampler(None) as s:
        pass
    assert s.peak_used_bytes is None and s.mean_util_pct is None and s.energy_j is None


@cuda
def test_cuda_timing_counts_asynchronous_work_and_matches_cuda_events():
    from benchbed.measure import StopRule, measure
    from benchbed.measure.gpu import EventTimer

    a = torch.randn(4096, 4096, device="cuda")

    def work():
        for _ in range(20):
            a @ a  # queued asynchronously; only the synchronise waits for it

    events = EventTimer("cuda")
    t = measure(work, StopRule(warmup=2, min_samples=20, min_time_s=0.5, max_time_s=3),
                sync=lambda: torch.cuda.synchronize(), events=events)
    wall = sorted(t.samples)[len(t.samples) // 2]
    ev = sorted(events.samples)[len(events.samples) // 2]
    assert len(events.samples) == len(t.samples)
    assert abs(wall / ev - 1) < 0.03, (wall, ev)


@cuda
def test_allocator_peak_matches_a_known_allocation():
    from benchbed.measure import CudaPeak

    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    with CudaPeak("cuda") as peak:
        block = torch.ones(256 * 2**20, device="cuda")  # 1 GiB of float32
        del block
    assert (peak.allocated - base) == pytest.approx(2**30, rel=0.05)


@cuda
def test_engine_records_gpu_memory_energy_and_events(tmp_path):
    from benchbed.engine import EngineConfig, Session
    from benchbed.measure import StopRule
    from benchbed.spec import Case

    s = Session(str(tmp_path / "r"), EngineConfig(rule=StopRule(min_time_s=0.2, max_time_s=1), isolate="always"))
    case = Case("memory-calibration", "bert-tiny", device="cuda", options=(("alloc_mb", 1024),))
    rec = s.run([case])[0].record
    assert rec["status"] == "ok", rec["message"]
    params_mb = rec["model_params"] * 4 / 2**20
    assert rec["gpu_alloc_peak_mb"] == pytest.approx(1024 + params_mb, rel=0.05)
    assert abs(rec["lat_median_s"] / rec["cuda_event_median_s"] - 1) < 0.03
    if rec["gpu_nvml_used_peak_mb"] is not None:
        assert rec["gpu_nvml_used_peak_mb"] >= 1024
        assert rec["gpu_util_mean_pct"] is not None


@cuda
def test_cuda_oom_is_a_record_and_the_sweep_stops(tmp_path):
    from benchbed.engine import EngineConfig, Session
    from benchbed.measure import StopRule
    from benchbed.spec import Case

    s = Session(str(tmp_path / "r"), EngineConfig(rule=StopRule(min_time_s=0.1, max_time_s=0.5),
                                                   isolate="never", memory_cap_mb=512))
    cases = [Case("memory-calibration", "bert-tiny", device="cuda", batch_size=b, options=(("alloc_mb", 128),))
             for b in (1, 2, 8, 16)]
    ok1, ok2, oom, skipped = s.run(cases)
    assert ok1.status == ok2.status == "ok" and oom.status == "oom", oom.record["message"]
    assert skipped.status == "skipped" and "batch size 8" in skipped.record["message"]
    assert torch.cuda.memory_allocated() < 2**30  # released
