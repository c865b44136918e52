import hashlib

import pytest

from benchbed.models import check_model
from benchbed.runners import runner_names
from benchbed.spec import Case, Matrix, SpecError, parse_shard
from benchbed.tasks import task_names


def test_case_id_is_stable_across_runs_and_machines():
    c = Case(task="fill-mask", model="synthetic:bert-tiny", runner="torch", batch_size=4, seq_len=64)
    # pinned: sha256 of the sorted, compact JSON of the parameters; changing it silently would
    # break matching cases across nights
    blob = ('{"batch_size":4,"device":"cpu","dtype":"fp32","model":"synthetic:bert-tiny","new_tokens":null,'
            '"options":{},"runner":"torch","seq_len":64,"task":"fill-mask"}')
    assert c.case_id == hashlib.sha256(blob.encode()).hexdigest()[:16] == "00a9df939070f9f8"
    assert c.pair("pipeline").pair_id == c.pair_id
    assert c.pair("pipeline").case_id != c.case_id


def test_matrix_order_is_deterministic_with_runner_innermost():
    m = Matrix(task=("fill-mask", "text-classification"), model=("bert-tiny",), batch_size=(1, 4))
    cases = m.cases()
    assert len(cases) == len(m) == 8
    assert [c.runner for c in cases[:2]] == ["torch", "pipeline"]
    assert [c.label for c in cases] == [c.label for c in m.cases()]
    assert cases[0].label == "fill-mask-bert-tiny-torch-cpu-fp32-b1-s128"


@pytest.mark.parametrize("change, message", [
    ({"task": ("nope",)}, f"unknown task 'nope' (valid: {', '.join(task_names())})"),
    ({"model": ("gpt-17",)}, "unknown model 'gpt-17'"),
    ({"runner": ("onnx",)}, "unknown runner 'onnx' (valid: torch, pipeline, onnxruntime"),
    ({"dtype": ("fp8",)}, "unknown dtype 'fp8' (valid: fp32, bf16, fp16, int8)"),
    ({"device": ("tpu",)}, "unknown device 'tpu' (valid: cpu, cuda, cuda:N, mps)"),
    ({"batch_size": (0,)}, "batch size must be a positive integer, got 0"),
    ({"seq_len": (-3,)}, "sequence length must be a positive integer, got -3"),
    ({"seq_len": ("ten",)}, "sequence length must be a positive integer, got 'ten'"),
])
def test_validation_names_the_problem_and_the_choices(change, message):
    m = Matrix(task=("fill-mask",), model=("bert-tiny",)).narrow(**change)
    with pytest.raises(SpecError) as err:
        m.validate(task_names(), check_model, runner_names())
    assert str(err.value).startswith(message)


def test_validation_without_a_registry_takes_any_runner_name():
    """spec imports nothing of ours, so without the registry it cannot know a plugin's runner:
    it takes the name (the doors pass the registry and refuse unknown ones)."""
    m = Matrix(task=("fill-mask",), model=("bert-tiny",), runner=("torch", "my-plugin"), reference="my-plugin")
    assert m.validate(task_names(), check_model).runner == ("torch", "my-plugin")


def test_cuda_and_mps_are_valid_devices():
    Matrix(task=("fill-mask",), model=("bert-tiny",), device=("cuda", "cuda:1", "mps")).validate(task_names(), check_model)


def test_narrow_replaces_axes_and_normalises_strings():
    m = Matrix(task=("fill-mask",), model=("bert-tiny",)).narrow(batch_size=["2", "8"], runner=None)
    m = m.validate(task_names(), check_model)
    assert m.batch_size == (2, 8) and m.runner == ("torch", "pipeline")


def test_shards_partition_cells_and_keep_pairs_together():
    m = Matrix(task=("fill-mask", "feature-extraction"), model=("bert-tiny",), batch_size=(1, 2, 4))
    shards = [m.shard(i, 3) for i in (1, 2, 3)]
    flat = [c for s in shards for c in s]
    assert sorted(c.case_id for c in flat) == sorted(c.case_id for c in m.cases())
    for s in shards:
        pairs = {c.pair_id for c in s}
        assert len(s) == 2 * len(pairs)
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "x"):
        with pytest.raises(SpecError):
            parse_shard(bad)


def test_matrix_from_mapping_rejects_unknown_keys():
    with pytest.raises(SpecError, match="unknown key"):
        Matrix.from_mapping({"task": ["fill-mask"], "model": ["bert-tiny"], "batchsize": [1]})
    with pytest.raises(SpecError, match="missing required key 'model'"):
        Matrix.from_mapping({"task": ["fill-mask"]})
