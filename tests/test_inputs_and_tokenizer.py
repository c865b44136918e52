import pytest

from benchbed.models.vocab import bert_uncased_tokenizer
from benchbed.tasks.text_inputs import make_texts


@pytest.fixture(scope="module")
def tok():
    return bert_uncased_tokenizer()


def test_wordpiece_really_splits_into_subwords(tok):
    pieces = tok.tokenize("The xylophones need reconfigurable tokenization.")
    assert "##ization" in pieces
    assert any(p.startswith("##") for p in tok.tokenize("xylophones"))
    assert tok.unk_token not in pieces
    assert len(tok) == 30522
    ids = tok("hello world")["input_ids"]
    assert ids == [101, 7592, 2088, 102]  # the real bert-base-uncased ids


@pytest.mark.parametrize("seq_len", [3, 8, 16, 64, 128, 512])
def test_texts_have_exactly_the_requested_token_length(tok, seq_len):
    texts = make_texts(tok, 3, seq_len, seed=7)
    assert [len(tok(t)["input_ids"]) for t in texts] == [seq_len] * 3
    assert len(set(texts)) == 3  # different inputs, not one text repeated


def test_texts_are_seeded_and_contain_subword_work(tok):
    a = make_texts(tok, 4, 128, seed=1)
    assert a == make_texts(tok, 4, 128, seed=1)
    assert a != make_texts(tok, 4, 128, seed=2)
    assert sum(p.startswith("##") for t in a for p in tok.tokenize(t)) > 4
    assert sum(p == tok.unk_token for t in a for p in tok.tokenize(t)) == 0


def test_mask_texts_have_exactly_one_mask(tok):
    for t in make_texts(tok, 5, 32, seed=0, mask=True):
        ids = tok(t)["input_ids"]
        assert len(ids) == 32 and ids.count(tok.mask_token_id) == 1


def test_too_short_for_any_text_is_an_error(tok):
    with pytest.raises(ValueError, match="no room"):
        make_texts(tok, 1, 2)
