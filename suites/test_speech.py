"""CTC speech recognition (wav2vec2), raw feature extractor + module + CTC decode vs the ASR pipeline.
seq_len is the clip length in milliseconds.

Run:  pytest suites/test_speech.py --benchmark -m quick
"""

import pytest

from benchbed import SPEECH_FULL, SPEECH_QUICK
from benchbed.pytest_plugin import parametrize

#: What ``benchbed run --suite suites/test_speech.py`` runs.
MATRIX = SPEECH_QUICK


@parametrize(SPEECH_QUICK, pytest.mark.quick)
def test_speech_quick(case, benchbed):
    benchbed.run(case)


@parametrize(SPEECH_FULL, pytest.mark.full)
def test_speech_full(case, benchbed):
    benchbed.run(case)
