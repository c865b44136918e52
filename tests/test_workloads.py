"""Real inputs and scenarios, on their own: sources, the seeded sampler, padding, and the serving
loop on a fake clock against queueing theory."""

import json

import numpy as np
import pytest

from benchbed.spec import SpecError
from benchbed.workloads.sampler import batches_of, draw, length_stats, padding_waste, sorted_batches
from benchbed.workloads.server import ServerSettings, poisson_arrivals, serve
from benchbed.workloads.sources import load_examples, python_docs_corpus


class FakeClock:
    """Time that moves only when the loop sleeps or the stub service works."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        assert s >= 0
        self.now += s


def test_python_docs_corpus_is_real_varied_and_stable():
    a, b = python_docs_corpus(), python_docs_corpus()
    assert a == b and len(a) >= 1000 and len(set(a)) == len(a)
    words = [len(s.split()) for s in a]
    assert min(words) >= 4 and max(words) > 60 and 10 <= np.median(words) <= 30
    assert any("iterable" in s for s in a)  # real prose about Python, not generated tokens


def test_same_seed_same_draws_and_no_repeat_before_exhaustion():
    assert draw(50, 120, seed=3) == draw(50, 120, seed=3)
    assert draw(50, 120, seed=3) != draw(50, 120, seed=4)
    first = draw(50, 120, seed=3)[:50]
    assert sorted(first) == list(range(50))


def test_padding_waste_and_bucketing():
    lengths = [10, 2, 9, 3, 8, 1]
    plain = batches_of(6, 2)  # [10,2] [9,3] [8,1] -> padded 20+18+16=54, real 33
    assert padding_waste(lengths, plain) == pytest.approx((54 - 33) / 33)
    bucketed = sorted_batches(lengths, 2)  # [10,9] [8,3] [2,1]
    assert padding_waste(lengths, bucketed) == pytest.approx((20 + 16 + 4 - 33) / 33)
    assert sorted(i for b in bucketed for i in b) == list(range(6))
    assert length_stats(lengths) == {"input_len_min": 1, "input_len_median": 5.5, "input_len_p90": 9.5,
                                     "input_len_max": 10}


def test_sources_read_every_format_and_pick_columns(tmp_path):
    rows = [{"text": f"sentence number {i}", "label": i % 2} for i in range(5)]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "a.csv").write_text("id,body\n" + "\n".join(f"{i},row {i} here" for i in range(4)))
    (tmp_path / "a.txt").write_text("one line\n\nanother line\n")
    import pandas as pd

    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    assert load_examples(str(tmp_path / "a.jsonl")).items[0] == "sentence number 0"
    assert load_examples(str(tmp_path / "a.parquet")).column is None
    assert load_examples(f"{tmp_path / 'a.csv'}#body").items == tuple(f"row {i} here" for i in range(4))
    assert load_examples(str(tmp_path / "a.txt")).items == ("one line", "another line")
    corpus = load_examples("corpus:python-docs")
    assert corpus.kind == "text" and len(corpus.items) >= 1000 and len(corpus.digest) == 16


@pytest.mark.parametrize("source, message", [
    ("", "empty source"),
    ("nope/missing.jsonl", "no such file or folder"),
    ("corpus:shakespeare", "unknown corpus 'shakespeare' (valid: corpus:python-docs)"),
    ("{dir}/a.csv#title", "no column 'title' (valid: id, body)"),
    ("{dir}/a.csv", "several columns and none named 'text'"),
    ("{dir}/empty.jsonl", "no rows"),
    ("{dir}/a.bin", "unknown file kind '.bin'"),
    ("{dir}", "a folder, but this task takes text"),
])
def test_bad_sources_are_one_line(tmp_path, source, message):
    (tmp_path / "a.csv").write_text("id,body\n1,x y z\n")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "a.bin").write_bytes(b"\0")
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        load_examples(source.replace("{dir}", str(tmp_path)))
    assert "\n" not in str(err.value)


def test_image_folder_for_image_tasks_only(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    ex = load_examples(str(tmp_path), kind="image")
    assert ex.kind == "image" and ex.items == (str(tmp_path / "x.png"),)
    with pytest.raises(SpecError, match="a folder, but this task takes text"):
        load_examples(str(tmp_path), kind="text")


def _stub(clock: FakeClock, service_s: float):
    def handle(batch):
        clock.now += service_s
    return handle


def test_md1_queue_mean_latency_matches_closed_form():
    """Poisson arrivals, deterministic service D, one worker, batch 1: mean time in system is
    D + rho / (2 mu (1 - rho)) (M/D/1, Pollaczek-Khinchine)."""
    clock = FakeClock()
    d, rate = 0.010, 60.0  # rho = 0.6
    load = serve(_stub(clock, d), ServerSettings(rate=rate, requests=40_000, queue_limit=10_000,
                                                 max_duration_s=1e9, seed=1), clock=clock, sleep=clock.sleep)
    mu, rho = 1 / d, rate * d
    expected = d + rho / (2 * mu * (1 - rho))
    assert load.dropped == 0 and load.completed == 40_000
    assert np.mean(load.latencies) == pytest.approx(expected, rel=0.04)
    assert np.mean(load.waits) == pytest.approx(expected - d, rel=0.06)
    assert load.achieved_rate == pytest.approx(rate, rel=0.03)


def test_above_capacity_the_queue_bound_holds_and_drops_are_counted():
    clock = FakeClock()
    load = serve(_stub(clock, 0.010), ServerSettings(rate=300.0, requests=3000, queue_limit=16, max_duration_s=1e9),
                 clock=clock, sleep=clock.sleep)
    assert load.max_queue <= 16
    assert load.dropped > 1000 and load.completed + load.dropped == load.offered == 3000
    assert load.achieved_rate == pytest.approx(100.0, rel=0.05)  # the worker's capacity
    assert max(load.waits) <= 16 * 0.010 + 1e-9  # a full queue bounds the wait too


def test_dynamic_batching_fills_batches_under_load_and_waits_at_most_max_wait():
    clock = FakeClock()
    load = serve(lambda b: setattr(clock, "now", clock.now + 0.004 + 0.001 * len(b)),
                 ServerSettings(rate=400.0, requests=4000, max_batch=8, max_wait_s=0.005, queue_limit=1000,
                                max_duration_s=1e9), clock=clock, sleep=clock.sleep)
    assert load.dropped == 0 and max(load.batch_sizes) == 8 and np.mean(load.batch_sizes) > 2
    light = FakeClock()
    quiet = serve(lambda b: setattr(light, "now", light.now + 0.004),
                  ServerSettings(rate=5.0, requests=200, max_batch=8, max_wait_s=0.005, max_duration_s=1e9),
                  clock=light, sleep=light.sleep)
    # at a low rate batches rarely fill: nobody waits much longer than max_wait for company
    assert max(quiet.waits) <= 0.005 + 1e-9


def test_timeouts_and_the_load_stops_by_itself():
    clock = FakeClock()
    load = serve(_stub(clock, 0.050), ServerSettings(rate=100.0, requests=500, queue_limit=500, timeout_s=0.2,
                                                     max_duration_s=2.0), clock=clock, sleep=clock.sleep)
    assert load.offered == len(poisson_arrivals(100.0, 500, 0, 2.0)) < 500  # arrivals stop at max_duration
    assert load.timed_out > 0 and load.completed + load.timed_out + load.dropped == load.offered
    assert max(load.waits) <= 0.2 + 1e-9


def test_bad_server_settings():
    with pytest.raises(ValueError, match="rate must be > 0"):
        ServerSettings(rate=0)


def test_datasets_library_sources_on_local_files(tmp_path):
    """``hf:`` goes through the datasets library, as a hub dataset would for a user online: here a
    local data file and a dataset saved with save_to_disk (no network)."""
    datasets = pytest.importorskip("datasets")
    rows = [{"sentence": f"example {i} of a local dataset", "label": i % 2} for i in range(6)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ex = load_examples(f"hf:{tmp_path / 'd.jsonl'}#sentence")
    assert ex.items == tuple(r["sentence"] for r in rows) and ex.column == "sentence"
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    assert load_examples(f"hf:{tmp_path / 'saved'}#sentence").items == ex.items
    with pytest.raises(SpecError, match=r"no column 'text' \(valid: sentence, label\)"):
        load_examples(f"hf:{tmp_path / 'd.jsonl'}#text")

def test_an_unreachable_hub_dataset_is_one_line(monkeypatch, capfd):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 sets it; no 20 s of retries
    with pytest.raises(SpecError, match="^--inputs 'hf:no-such-dataset-xyz#text': ") as err:
        load_examples("hf:no-such-dataset-xyz#text")
    assert "\n" not in str(err.value) and capfd.readouterr().err == ""


@pytest.mark.parametrize("dtype, a, b, ok", [
    ("bf16", ("POSITIVE", 0.51), ("NEGATIVE", 0.505), True),     # two classes within bf16 tolerance: a tie
    ("bf16", ("POSITIVE", 0.90), ("NEGATIVE", 0.80), False),     # cannot both be top within tolerance
    ("fp32", ("POSITIVE", 0.50001), ("NEGATIVE", 0.50002), True),
    ("fp32", ("POSITIVE", 0.52), ("NEGATIVE", 0.51), False),     # beyond fp32's tolerance
])
def test_text_classification_parity_allows_only_near_tie_label_flips(dtype, a, b, ok):
    """Different batch compositions (length bucketing) round bf16 differently: a flip between two
    classes within tolerance of each other is a tie, anything more is a mismatch."""
    from benchbed.tasks.text_classification import TextClassification

    same = {"label": "POSITIVE", "score": 0.99}
    verdict = TextClassification().compare([same, {"label": a[0], "score": a[1]}],
                                           [same, {"label": b[0], "score": b[1]}], dtype)
    assert verdict.ok is ok
    assert ("near-tie flip(s) (items 1" in verdict.detail) if ok else ("item 1: label" in verdict.detail)


def _knee(capacity, met, **kw):
    from benchbed.workloads.knee import knee_search

    gen = knee_search(capacity, **kw)
    rate = next(gen)
    try:
        while True:
            rate = gen.send(met(rate))
    except StopIteration as stop:
        return stop.value


@pytest.mark.parametrize("threshold", [73.0, 140.0, 9.0])
def test_knee_search_brackets_a_threshold_within_its_resolution(threshold):
    search = _knee(100.0, lambda r: r <= threshold)
    assert threshold / 1.1 <= search.knee <= threshold and len(search.probes) <= 8
    missed = [r for r, ok in search.probes if not ok]
    assert missed and min(missed) <= search.knee * 1.1 + 1e-9  # the bracket really closed


def test_knee_search_says_none_when_nothing_meets_the_slo():
    search = _knee(100.0, lambda r: False)
    assert search.knee is None and search.probes[-1][0] <= 100.0 / 64 * 2
    with pytest.raises(ValueError, match="capacity"):
        _knee(0.0, lambda r: True)


def test_knee_search_on_a_queue_finds_the_rate_whose_p99_meets_the_slo():
    """M/D/1 on a fake clock, service 10 ms (capacity 100/s), SLO p99 <= 60 ms: the knee is met,
    the search's lowest missed rate is within 10% above it, and it sits below capacity."""
    def met(rate):
        clock = FakeClock()
        load = serve(_stub(clock, 0.010), ServerSettings(rate=rate, requests=4000, queue_limit=10_000,
                                                         max_duration_s=1e9, seed=3), clock=clock, sleep=clock.sleep)
        return float(np.percentile(load.latencies, 99)) <= 0.060

    search = _knee(100.0, met)
    assert 40.0 < search.knee < 100.0 and met(search.knee)
    assert not met(min(r for r, ok in search.probes if not ok))


def _write_wav(path, samples, rate, width=2, channels=1):
    import wave

    x = np.asarray(samples, dtype=float)
    x = np.repeat(x[:, None], channels, axis=1) if channels > 1 else x[:, None]
    if width == 1:
        data = (np.clip(x, -1, 1) * 127 + 128).astype(np.uint8).tobytes()
    else:
        data = (np.clip(x, -1, 1) * (2 ** (8 * width - 1) - 1)).astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


@pytest.mark.parametrize("rate, width, channels", [(16_000, 2, 1), (8_000, 2, 2), (22_050, 1, 1), (48_000, 4, 2)])
def test_read_wav_gives_16khz_mono_float_clips(tmp_path, rate, width, channels):
    from benchbed.workloads.sources import read_wav

    t = np.arange(int(0.5 * rate)) / rate
    _write_wav(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t), rate, width, channels)
    x = read_wav(str(tmp_path / "a.wav"))
    assert x.dtype == np.float32 and x.ndim == 1 and len(x) == pytest.approx(8000, abs=2)
    # still a 440 Hz tone of amplitude 0.5 after mixing and resampling
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * 16_000 / len(x) - 440) < 5
    assert np.max(np.abs(x[100:-100])) == pytest.approx(0.5, abs=0.02)
    assert len(read_wav(str(tmp_path / "a.wav"), max_seconds=0.25)) == 4000


def test_a_wav_folder_is_for_speech_only_and_bad_files_are_one_line(tmp_path):
    (tmp_path / "clips").mkdir()
    _write_wav(tmp_path / "clips" / "a.wav", np.zeros(1600), 16_000)
    ex = load_examples(str(tmp_path / "clips"), "audio")
    assert ex.kind == "audio" and len(ex.items) == 1
    with pytest.raises(SpecError, match="a folder, but this task takes text"):
        load_examples(str(tmp_path / "clips"), "text")
    (tmp_path / "clips" / "b.wav").write_bytes(b"not a wav")
    with pytest.raises(SpecError, match="not a PCM WAV file"):
        load_examples(str(tmp_path / "clips"), "audio")


def test_a_load_builds_only_the_inputs_its_window_can_use():
    """--requests 10000000 at 10 req/s: the 60 s window sees at most 600 arrivals, so 600 inputs
    are built (issue #30: it tokenised all ten million first)."""
    from types import SimpleNamespace

    from benchbed.execute.drivers.server import POOL_MAX, ServerDriver
    from benchbed.workloads.server import ServerSettings

    def pool(rate, requests, auto=False, batch=1):
        fake = SimpleNamespace(settings=ServerSettings(rate=rate, requests=requests), auto=auto,
                               case=SimpleNamespace(batch_size=batch))
        return ServerDriver.pool_size(fake)

    assert pool(10.0, 10_000_000) == 600
    assert pool(10.0, 200) == 200
    assert pool(1.0, 10_000_000, auto=True) == POOL_MAX
    assert pool(0.01, 200, batch=8) == 8
