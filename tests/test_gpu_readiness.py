"""What a first real GPU run would hit (issue #25), checked without a GPU.

NVML is the fake of `fake_nvml` (installed per test, like the fake clock of the timing tests);
ONNX Runtime's provider check and I/O binding run on the real CPU build; the memory and energy
arithmetic on real CPU tensors and a real training runner.
"""

from __future__ import annotations

import os
import time
import types

import pytest
import torch

from benchbed.measure.gpu import NvmlSampler, check_devices, nvml_handle
from benchbed.measure.interference import Interference, other_gpu_processes
from fake_nvml import FakeGpu, install
from known_models import KnownLinear

#: a pid no test process has (pid_max is at most 4194304)
STRANGER = 4_194_000


@pytest.fixture
def gpu_env(monkeypatch):
    """No CUDA_VISIBLE_DEVICES unless a test sets one: NVML index 0 is torch's cuda:0."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return monkeypatch


# -- NVML: MIG, energy, power ------------------------------------------------------------------------

def test_mig_keeps_memory_samples_and_names_power_and_energy_unavailable(gpu_env):
    mig = FakeGpu(uuid="MIG-11111111-2222-3333-4444-555555555555", mig=True, util_pct=None, power_w=None,
                  energy_w=None, used_bytes=3 * 2**30)
    install(gpu_env, FakeGpu(), mig)
    gpu_env.setenv("CUDA_VISIBLE_DEVICES", mig.uuid)
    handle = nvml_handle("cuda")
    assert handle is mig
    with NvmlSampler(handle, interval_s=0.01) as s:
        time.sleep(0.1)
    assert len(s.samples) >= 3 and s.peak_used_bytes == 3 * 2**30
    assert s.mean_util_pct is None and s.energy_j is None and s.mean_power_w is None
    assert s.unavailable == "utilisation, power, energy counter: not supported on a MIG instance"
    from benchbed.execute.passes import nvml_columns

    cols = nvml_columns(s, items=8)
    assert cols["gpu_nvml_used_peak_mb"] == 3072 and cols["energy_j_per_item"] is None
    assert "MIG" in cols["gpu_counters_unavailable"]


def test_energy_per_item_counts_batch_times_accumulation_and_power_is_energy_over_time(gpu_env):
    from benchbed.execute.passes import resource_columns

    install(gpu_env, FakeGpu(energy_w=400.0, power_w=150.0))  # power: a stale one-second trailing average
    calls = []

    def run():
        time.sleep(0.02)
        calls.append(1)

    run.sync = lambda: None
    cols = resource_columns(run, "cuda", items_per_call=8 * 4, seconds=0.3)
    seconds = 0.02 * len(calls)
    joules = cols["energy_j_per_item"] * len(calls) * 32
    assert cols["energy_method"] == "nvml-energy-counter"
    assert joules == pytest.approx(400.0 * seconds, rel=0.35)  # the pass also spans the sampler's reads
    assert cols["gpu_power_mean_w"] == pytest.approx(400.0, rel=0.05)  # energy ÷ time, not the 150 W sample
    assert cols["gpu_counters_unavailable"] is None


def test_the_training_driver_counts_accumulated_examples_per_call():
    from benchbed.execute.drivers.base import Driver
    from benchbed.execute.drivers.training import TrainingDriver
    from benchbed.spec import Case

    case = Case("train-causal-lm", "synthetic:llama-tiny", batch_size=8, options=(("grad_accum", 4),))
    driver = object.__new__(TrainingDriver)
    driver.case, driver.grad_accum = case, 4
    assert driver.items_per_call == 32
    plain = object.__new__(Driver)
    plain.case = case
    assert plain.items_per_call == 8


def test_a_device_without_an_energy_counter_integrates_power_and_says_so(gpu_env):
    install(gpu_env, FakeGpu(energy_w=None, power_w=300.0))
    with NvmlSampler(nvml_handle("cuda"), interval_s=0.01) as s:
        time.sleep(0.1)
    assert s.energy_method == "nvml-power-sampling" and s.energy_j == pytest.approx(300 * s.seconds, rel=0.3)
    assert s.unavailable == "energy counter: not supported on this device or driver"


# -- interference on the GPU -------------------------------------------------------------------------

def _window(seconds=0.3):
    with Interference(2, "cuda:0") as w:
        time.sleep(seconds)
    return w.reading


def test_a_thermal_brake_during_the_window_marks_the_record(gpu_env):
    install(gpu_env, FakeGpu(violation_rates={"hw_thermal": 0.4}, pids=[os.getpid()]))
    r = _window()
    cols = r.columns()
    assert cols["interfered"] and "hw_thermal" in cols["interference"] and "clocks held down" in cols["interference"]
    assert "hw_thermal=" in cols["gpu_throttle"]


def test_the_power_cap_is_recorded_but_does_not_mark(gpu_env):
    # reasons at both ends read idle: only the counter saw the window
    install(gpu_env, FakeGpu(violation_rates={"power_cap": 0.9}, pids=[os.getpid()], reasons=0x1))
    r = _window()
    cols = r.columns()
    assert r.gpu.reason is None, cols["interference"]  # the GPU's part; a busy CPU beside is its own mark
    assert "power_cap=" in cols["gpu_throttle"] and cols["gpu_other_processes"] == 0


def test_benchbeds_own_parent_on_the_gpu_does_not_mark_but_a_stranger_does(gpu_env):
    gpu = FakeGpu(pids=[os.getpid(), os.getppid()])
    install(gpu_env, gpu)
    assert _window(0.05).gpu.reason is None  # the GPU's part; a busy CPU beside is its own mark
    gpu.pids.append(STRANGER)
    cols = _window(0.05).columns()
    assert cols["interfered"] and cols["gpu_other_processes"] == 1 and str(STRANGER) in cols["interference"]


def test_in_a_container_other_processes_are_counted_by_what_benchbed_holds(gpu_env):
    import benchbed.measure.interference as interference

    gpu_env.setattr(interference, "holds_cuda", lambda pid: pid == os.getpid())
    gpu = FakeGpu(pids=[STRANGER])  # the host's pid for this process: not ours to match
    install(gpu_env, gpu)
    assert _window(0.05).gpu.reason is None  # the GPU's part; a busy CPU beside is its own mark
    gpu.pids.append(STRANGER + 1)
    cols = _window(0.05).columns()
    assert cols["interfered"] and "host pids, in a container" in cols["interference"]
    assert other_gpu_processes(set(), {os.getpid()}) == ((), 0)


# -- devices users name ------------------------------------------------------------------------------

def test_a_gpu_index_beyond_the_host_is_one_line_naming_the_devices(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H200")
    assert check_devices(["cpu", "cuda:0"]) is None
    assert check_devices(["cuda:7"]) == "--device cuda:7: this host has cpu, cuda:0 (NVIDIA H200)"
    from benchbed.cli import main

    out = tmp_path / "results"
    code = main(["run", "--device", "cuda:7", "--model", "bert-tiny", "--results", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cuda:0 (NVIDIA H200)" in err[0], err
    assert not out.exists()


def test_without_cuda_a_cuda_device_stays_a_skipped_case_not_an_error():
    assert check_devices(["cuda:7"], cuda_count=0) is None


def test_a_mig_uuid_that_does_not_exist_is_one_line_naming_the_ones_that_do(gpu_env):
    install(gpu_env, FakeGpu(uuid="GPU-aaaa"), FakeGpu(uuid="MIG-bbbb", mig=True))
    problem = check_devices(["cuda"], cuda_count=0, visible="MIG-zzzz")
    assert problem == ("CUDA_VISIBLE_DEVICES names MIG-zzzz, which this host does not have "
                       "(present: GPU-aaaa, MIG-bbbb)")
    assert check_devices(["cuda"], cuda_count=0, visible="MIG-bbbb") is None


# -- memory: a runner's own peak ---------------------------------------------------------------------

def test_a_training_runners_peak_is_its_own_copy_plus_its_step_not_the_cells():
    from benchbed.measure.memory import own_peak_bytes
    from benchbed.runners.training import TrainLoopRunner
    from benchbed.spec import Case
    from benchbed.tasks.training import TrainSettings

    width = 64
    examples = [{"input_ids": torch.arange(4) + i, "attention_mask": torch.ones(4, dtype=torch.long),
                 "labels": torch.arange(4) + 2 * i} for i in range(8)]
    bundle = types.SimpleNamespace(module=KnownLinear(width).requires_grad_(False))
    case = Case("train-text-classification", "synthetic:bert-tiny", batch_size=2)
    runs = [TrainLoopRunner(case, types.SimpleNamespace(settings=TrainSettings()), bundle, examples, lambda: None)
            for _ in range(2)]
    for run in runs:
        run.prepare()
        for _ in range(2):
            run()
    params = (width * width + width) * 4
    for run in runs:
        state = run.state_bytes()
        # its weights and AdamW's two moments (and two scalar step counters); gradients are freed
        # between steps (zero_grad(set_to_none)), so they belong to the step's increase
        assert 3 * params <= state <= 3 * params + 64, (state, params)
        run.close()
    assert own_peak_bytes(state, 10 * 2**20) == state + 10 * 2**20
    assert own_peak_bytes(None, 5) == 5 and own_peak_bytes(state, None) is None


def test_inference_runners_hold_the_shared_module_and_onnxruntime_no_allocator_figure():
    from benchbed.runners.base import Runner, tensor_bytes
    from benchbed.runners.onnx import OnnxRuntimeRunner

    module = torch.nn.Linear(32, 32)
    module.tied = module.weight  # a tied weight counts once
    assert tensor_bytes(module.parameters(), [module.weight]) == (32 * 32 + 32) * 4
    assert Runner.TORCH_ALLOCATOR and not OnnxRuntimeRunner.TORCH_ALLOCATOR


# -- ONNX Runtime on CUDA ----------------------------------------------------------------------------

def _tiny_export(device):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from benchbed.runners.onnx import _export
    from benchbed.execute.workbench import Workbench
    from benchbed.spec import Case
    from benchbed.tasks import get_task

    case = Case("text-classification", "bert-tiny", runner="onnxruntime", batch_size=2, seq_len=16)
    task = get_task(case.task)
    bundle = Workbench().bundle(case, task)
    with torch.inference_mode():
        enc = task.preprocess(bundle, task.make_inputs(bundle.tokenizer, 2, 16, 0), "cpu")
    kwargs = task.module_inputs(bundle, enc)
    return _export, bundle, kwargs


@pytest.mark.slow
def test_a_session_that_falls_back_to_the_cpu_is_skipped_with_the_reason():
    import onnxruntime as ort

    from benchbed.runners.base import RunnerUnavailable
    from benchbed.runners.onnx import _Unsupported, check_providers

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider: no fallback to provoke")
    export, bundle, kwargs = _tiny_export("cuda")
    with pytest.raises(_Unsupported, match="instead of CUDAExecutionProvider"):
        export(bundle.module, kwargs, "cuda", 1)  # asked for CUDA; ORT quietly opened it on the CPU
    fallen = types.SimpleNamespace(get_providers=lambda: ["CPUExecutionProvider"])
    with pytest.raises(_Unsupported, match="CPUExecutionProvider instead of CUDAExecutionProvider"):
        check_providers(fallen, "cuda:1")
    check_providers(fallen, "cpu")
    assert issubclass(RunnerUnavailable, Exception)


@pytest.mark.slow
def test_io_binding_gives_the_sessions_own_answers_without_a_host_copy_step():
    from benchbed.runners.onnx import bound_run

    export, bundle, kwargs = _tiny_export("cpu")
    ex = export(bundle.module, kwargs, "cpu", 1)
    plain = ex.session.run(None, {k: kwargs[k].numpy() for k in ex.names})
    bound = bound_run(ex.session, {k: kwargs[k] for k in ex.names}, "cpu")
    assert len(bound) == len(plain) and all(isinstance(b, torch.Tensor) for b in bound)
    for b, p in zip(bound, plain):
        assert torch.equal(b, torch.from_numpy(p))


def test_bf16_on_the_cuda_provider_is_skipped_not_an_error():
    pytest.importorskip("onnxruntime")
    from benchbed.runners.onnx import OnnxRuntimeRunner
    from benchbed.spec import Case
    from benchbed.tasks import get_task

    task = get_task("text-classification")
    reason = OnnxRuntimeRunner.unavailable(task, Case("text-classification", "bert-tiny", runner="onnxruntime",
                                                      device="cuda", dtype="bf16"))
    assert reason and "bf16" in reason


def test_the_cuda_provider_is_given_the_cases_device_id():
    from benchbed.runners.onnx import _providers

    assert _providers("cuda:1")[0] == ("CUDAExecutionProvider", {"device_id": 1,
                                                                 "arena_extend_strategy": "kSameAsRequested"})
    assert _providers("cuda")[0][1]["device_id"] == 0 and _providers("cpu") == ["CPUExecutionProvider"]


# -- the Trainer on a multi-GPU host -----------------------------------------------------------------

def test_the_trainer_stays_on_one_gpu_on_a_multi_gpu_host(tmp_path):
    from benchbed.runners.training import one_device

    args = types.SimpleNamespace(n_gpu=4, _n_gpu=4)
    one_device(args)
    assert args._n_gpu == 1
    from transformers import TrainingArguments

    real = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    real._n_gpu = 2  # what transformers sets from device_count() on a two-GPU host
    assert one_device(real).n_gpu == 1 and real.train_batch_size == real.per_device_train_batch_size


# -- the host yardstick on CUDA ----------------------------------------------------------------------

def test_the_cuda_yardstick_is_a_new_version_and_the_cpu_one_is_unchanged():
    from benchbed.measure.yardstick import YARDSTICK_VERSION, yardstick_version

    assert yardstick_version("cpu") == YARDSTICK_VERSION == 1 and yardstick_version("cuda:0") == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_cuda_yardstick_does_not_depend_on_tf32():
    from benchbed.measure.yardstick import host_yardstick

    call = host_yardstick("cuda")
    times = {}
    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        call()
        t0 = time.perf_counter()
        for _ in range(20):
            call()
        times[tf32] = time.perf_counter() - t0
    torch.backends.cuda.matmul.allow_tf32 = False
    assert times[True] / times[False] == pytest.approx(1, abs=0.3)
