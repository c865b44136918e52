"""Question answering and encoder-decoder generation (summarization, text2text). Their pipelines
exist in transformers 4.x; on 5.x the raw paths are measured and the pipeline side is recorded as
skipped, with the reason.

Run:  pytest suites/test_seq2seq_qa.py --benchmark -m quick
"""

import pytest

from benchbed import Matrix
from benchbed.pytest_plugin import parametrize

QA_QUICK = Matrix(task=("question-answering",), model=("synthetic:bert-tiny",), batch_size=(1, 4), seq_len=(64,))
QA_FULL = Matrix(task=("question-answering",), model=("synthetic:bert-base-uncased",), dtype=("fp32", "bf16"),
                 batch_size=(1, 8), seq_len=(256, 384))
SEQ2SEQ_QUICK = Matrix(task=("summarization", "text2text-generation"), model=("synthetic:bart-tiny",),
                       batch_size=(1, 4), seq_len=(64,), new_tokens=8)
SEQ2SEQ_FULL = Matrix(task=("summarization",), model=("synthetic:bart-base",), dtype=("fp32", "bf16"),
                      batch_size=(1, 4), seq_len=(256, 512), new_tokens=32)

#: What ``benchbed run --suite suites/test_seq2seq_qa.py`` runs.
MATRIX = QA_QUICK


@parametrize(QA_QUICK, pytest.mark.quick)
def test_qa_quick(case, benchbed):
    benchbed.run(case)


@parametrize(SEQ2SEQ_QUICK, pytest.mark.quick)
def test_seq2seq_quick(case, benchbed):
    benchbed.run(case)


@parametrize(QA_FULL, pytest.mark.full)
def test_qa_full(case, benchbed):
    benchbed.run(case)


@parametrize(SEQ2SEQ_FULL, pytest.mark.full)
def test_seq2seq_full(case, benchbed):
    benchbed.run(case)
