"""Training: a hand-written PyTorch loop (``torch``) vs ``transformers.Trainer`` (``trainer``) on the
same model, examples, optimizer and seed, one optimizer step per sample, with loss and weight parity
(docs/training.md). Needs the ``train`` extra (accelerate) for the Trainer.

Run:  pytest suites/test_training.py --benchmark -m quick   (bert-tiny and llama-tiny, under a minute)
      pytest suites/test_training.py --benchmark -m full    (real all-MiniLM-L6-v2 weights, GPT-2-tiny)
      benchbed run --suite suites/test_training.py           (MATRIX: the full MiniLM matrix)
"""

import pytest

from benchbed import Matrix
from benchbed.pytest_plugin import parametrize
from benchbed.spec import Workload

QUICK_CLASSIFY = Matrix(task=("train-text-classification",), model=("bert-tiny",), batch_size=(4,), seq_len=(32,),
                        workload=Workload(grad_accum=(1,)))
QUICK_LM = Matrix(task=("train-causal-lm",), model=("synthetic:llama-tiny",), batch_size=(4,), seq_len=(32,),
                  workload=Workload(grad_accum=(1, 2)))

#: The figures of docs/training.md: MiniLM sequence classification, GPT-2-tiny causal LM.
FULL_CLASSIFY = Matrix(task=("train-text-classification",), model=("minilm",), batch_size=(8, 32), seq_len=(128,),
                       dtype=("fp32", "bf16"))
FULL_LM = Matrix(task=("train-causal-lm",), model=("synthetic:gpt2-tiny",), batch_size=(8, 32), seq_len=(128,),
                 dtype=("fp32", "bf16"))

#: What ``benchbed run --suite suites/test_training.py`` runs.
MATRIX = FULL_CLASSIFY


@parametrize(QUICK_CLASSIFY, pytest.mark.quick)
def test_quick_classify(case, benchbed):
    benchbed.run(case)


@parametrize(QUICK_LM, pytest.mark.quick)
def test_quick_lm(case, benchbed):
    benchbed.run(case)


@parametrize(FULL_CLASSIFY, pytest.mark.full)
def test_full_classify(case, benchbed):
    benchbed.run(case)


@parametrize(FULL_LM, pytest.mark.full)
def test_full_lm(case, benchbed):
    benchbed.run(case)
