"""Real workloads: real text (corpus:python-docs, offline), a dataset end to end, a server under
open-loop load, every runner with parity (docs/workloads.md).

Run:  pytest suites/test_workloads.py --benchmark -m quick   (bert-tiny, about a minute)
      pytest suites/test_workloads.py --benchmark -m full    (real all-MiniLM-L6-v2 weights)
      benchbed run --suite suites/test_workloads.py           (MATRIX: the full dataset matrix)
"""

import pytest

from benchbed import Matrix
from benchbed.pytest_plugin import parametrize
from benchbed.spec import Workload

CORPUS = "corpus:python-docs"
BASE = dict(task=("text-classification",), inputs=CORPUS, seq_len=(128,))

QUICK_LATENCY = Matrix(model=("bert-tiny",), batch_size=(1, 8), **BASE)
QUICK_DATASET = Matrix(model=("bert-tiny",), batch_size=(8,), scenario=("dataset",),
                       runner=("torch", "pipeline", "torch-bucketed"), workload=Workload(examples=200), **BASE)
QUICK_SERVER = Matrix(model=("bert-tiny",), batch_size=(1,), scenario=("server",),
                      workload=Workload(rates=(20.0, 100.0, 400.0), requests=60), **BASE)

#: The figures of docs/workloads.md: real MiniLM weights, 1,000 examples, batch 1/8/32.
FULL_DATASET = Matrix(model=("minilm",), batch_size=(1, 8, 32), scenario=("dataset",),
                      runner=("torch", "pipeline", "torch-bucketed", "onnxruntime"), **BASE)
FULL_SERVER = Matrix(model=("minilm",), batch_size=(1,), scenario=("server",),
                     runner=("torch", "pipeline", "onnxruntime"),
                     workload=Workload(rates=(10.0, 20.0, 40.0, 60.0, 80.0), requests=200), **BASE)

#: What ``benchbed run --suite suites/test_workloads.py`` runs.
MATRIX = FULL_DATASET


@parametrize(QUICK_LATENCY, pytest.mark.quick)
def test_quick_latency(case, benchbed):
    benchbed.run(case)


@parametrize(QUICK_DATASET, pytest.mark.quick)
def test_quick_dataset(case, benchbed):
    benchbed.run(case)


@parametrize(QUICK_SERVER, pytest.mark.quick)
def test_quick_server(case, benchbed):
    benchbed.run(case)


@parametrize(FULL_DATASET, pytest.mark.full)
def test_full_dataset(case, benchbed):
    benchbed.run(case)


@parametrize(FULL_SERVER, pytest.mark.full)
def test_full_server(case, benchbed):
    benchbed.run(case)
