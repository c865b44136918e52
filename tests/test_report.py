"""The HTML report: escaping, corrupt input, comparison numbers by hand, and a real headless browser."""

import datetime as dt
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from benchbed.record import empty_record
from benchbed.regress import compare_frames
from benchbed.report import build_report
from benchbed.spec import Case

from conftest import run_cli

EVIL = "<script>alert(1)</script>"


def _rec(run_id, samples, runner="torch", model="synthetic:bert-tiny", task="fill-mask", batch_size=1, seq_len=16,
         day=0, **extra):
    case = Case(task, model, runner=runner, batch_size=batch_size, seq_len=seq_len)
    x = np.asarray(samples, dtype=float)
    rec = empty_record()
    rec.update(run_id=run_id, case_id=case.case_id, pair_id=case.pair_id,
               started_at=dt.datetime(2026, 11, 1 + day, tzinfo=dt.timezone.utc), suite="t", task=task,
               model=model, runner=runner, device="cpu", dtype="fp32", batch_size=batch_size, seq_len=seq_len,
               status="ok", parity_ok=True, parity_detail="equal", samples_s=x.tolist(), n_samples=len(x), warmup=1,
               lat_median_s=float(np.median(x)), items_per_s=batch_size / float(np.median(x)), pre_s=1e-4,
               fwd_s=1e-3, post_s=1e-4, cpu_rss_peak_delta_mb=1.0, threads=2, measure_s=1.0)
    rec.update(extra)
    return rec


def _frame(records):
    from benchbed.record import to_table

    return to_table(records).to_pandas()


def test_strings_from_results_are_escaped_and_the_page_has_no_script():
    df = _frame([
        _rec("r1", [1e-3] * 5, model=EVIL),
        _rec("r1", [2e-3] * 5, runner="pipeline", model=EVIL, parity_ok=False, parity_detail=EVIL),
        _rec("r1", [1e-3], runner="torch", task="text-classification", status="error",
             message='<img src=x onerror="alert(2)">'),
    ])
    page = build_report(df)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "MISMATCH" in page


def test_comparison_numbers_match_hand_computation():
    base = [_rec("base", [1, 2, 3, 4, 5], batch_size=1), _rec("base", [1, 2, 3, 4, 5], batch_size=2),
            _rec("base", [1, 2, 3, 4, 5], batch_size=4)]
    cur = [_rec("cur", [6, 7, 8, 9, 10], batch_size=1),           # slower: median 3 -> 8
           _rec("cur", [0.1, 0.2, 0.3, 0.4, 0.5], batch_size=2),  # faster: median 3 -> 0.3
           _rec("cur", [1.5, 2.5, 3, 3.5, 4.5], batch_size=4)]    # same median, overlapping
    cmp = compare_frames(_frame(base), _frame(cur))
    assert list(cmp["batch_size"]) == [1, 4, 2]  # worst regression first
    slow, same, fast = (cmp.iloc[i] for i in range(3))
    assert slow["change"] == pytest.approx(8 / 3 - 1)
    # U = 0 for fully separated samples of 5 and 5: exact two-sided p = 2 / C(10, 5) = 2 / 252
    assert slow["p_value"] == pytest.approx(2 / 252)
    assert slow["verdict"] == "regression" and slow["change_ci_low"] > 0
    assert fast["change"] == pytest.approx(0.3 / 3 - 1) and fast["verdict"] == "improvement"
    assert same["change"] == pytest.approx(0.0) and same["p_value"] > 0.5
    # five samples a side spread over a factor of 3 could not have shown a 5% change: not a pass
    assert same["verdict"] == "underpowered" and same["mde"] > same["threshold"] and same["mde_basis"] == "samples"

    page = build_report(_frame(cur), baseline=_frame(base), current=_frame(cur))
    assert "+166.7%*" in page and "-90.0%*" in page and "▲ regression" in page and "▼ improvement" in page
    assert "○ underpowered" in page and "detectable at 95% power" in page
    assert page.index("+166.7%") < page.index("-90.0%")


def test_environment_change_is_named_in_the_comparison():
    base = _frame([_rec("base", [1, 2, 3], env_torch="2.12.0")])
    cur = _frame([_rec("cur", [1, 2, 3], env_torch="2.13.0")])
    page = build_report(cur, baseline=base, current=cur)
    assert "env_torch: 2.12.0 -&gt; 2.13.0" in page


def test_many_cells_become_a_grid_with_details(tmp_path):
    recs = []
    for b in (1, 2, 4, 8, 16):
        for s in (16, 32, 64):
            recs += [_rec("r", [1e-3 * b] * 5, batch_size=b, seq_len=s),
                     _rec("r", [1.2e-3 * b] * 5, runner="pipeline", batch_size=b, seq_len=s)]
    page = build_report(_frame(recs))
    assert "rows: batch, columns: seq" in page and "<details><summary>all 15 cells</summary>" in page
    assert "pipeline adds 0.20 ms per call to torch at batch 1 (+20%); still +20% at batch 16." in page


@pytest.fixture(scope="module")
def real_results(tmp_path_factory):
    """A real quick run (two tasks, both paths) for the CLI and browser tests."""
    root = tmp_path_factory.mktemp("real") / "results"
    p = run_cli("run", "--quick", "--task", "text-classification,token-classification", "--batch-size", "1,4",
                "--seq-len", "16", "--results", str(root), "--min-time", "0.05", "--max-time", "0.3", "-q")
    assert p.returncode == 0, p.stderr
    return root


def test_cli_report_skips_corrupt_files_with_a_warning(real_results, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(real_results, mixed)
    (mixed / "broken.parquet").write_bytes(b"PAR1 garbage")
    out = tmp_path / "out" / "r.html"
    p = run_cli("report", str(mixed), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "broken.parquet" in p.stderr and "skipping" in p.stderr
    assert out.exists() and "text-classification" in out.read_text()


@pytest.mark.parametrize("args, expected", [
    (["/nonexistent/results"], "results '/nonexistent/results' does not exist"),
    (["--baseline", "x"], "--baseline and --current go together"),
])
def test_cli_report_bad_input(args, expected, tmp_path):
    p = run_cli("report", *args, "-o", str(tmp_path / "r.html"))
    assert p.returncode == 2 and expected in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


def test_cli_report_on_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    p = run_cli("report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.html"))
    assert p.returncode == 2 and "no benchbed records" in p.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
const origError = console.error; console.error = (...a) => { window.__errors.push(a.join(' ')); origError(...a); };
window.addEventListener('load', () => {
  const imgs = [...document.querySelectorAll('figure img')].map(i => {
    const r = i.getBoundingClientRect(); return [i.naturalWidth, i.naturalHeight, r.width, r.height]; });
  document.body.setAttribute('data-probe', JSON.stringify({imgs, errors: window.__errors,
    tables: document.querySelectorAll('table').length, title: document.title}));
});
</script>"""


def _chromium(*args, url, home):
    """Headless chromium on `url`, its home (crash reports, config, cache) in the test's folder:
    ``--user-data-dir`` alone still left ``~/.config/chromium/Crash Reports``."""
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--virtual-time-budget=5000"]
    return subprocess.run(base + list(args) + [url], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_renders_in_a_real_headless_browser(real_results, tmp_path):
    out = tmp_path / "report.html"
    p = run_cli("report", str(real_results), "-o", str(out))
    assert p.returncode == 0, p.stderr
    probed = tmp_path / "probed.html"  # the probe is the test's; the report itself carries no script
    probed.write_text(out.read_text().replace("<head>", "<head>" + PROBE, 1))
    dom = _chromium(f"--user-data-dir={tmp_path / 'ud1'}", "--dump-dom", url=probed.as_uri(), home=tmp_path)
    m = re.search(r"data-probe=\"([^\"]*)\"", dom.stdout)
    assert m, dom.stderr[-2000:]
    import html

    probe = json.loads(html.unescape(m.group(1)))
    assert probe["title"] == "benchbed report" and probe["errors"] == []
    assert probe["tables"] >= 4
    assert len(probe["imgs"]) >= 4
    for natural_w, natural_h, w, h in probe["imgs"]:
        assert natural_w > 200 and natural_h > 100 and w > 200 and h > 100

    shot = tmp_path / "shot.png"
    _chromium(f"--user-data-dir={tmp_path / 'ud2'}", "--window-size=1280,2400", f"--screenshot={shot}",
              url=out.as_uri(), home=tmp_path)
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 2400)
    pixels = np.asarray(img.resize((320, 600))).reshape(-1, 3)
    colours = len({tuple(p) for p in pixels})
    assert colours > 50  # text, tables and charts, not a blank page


def test_generation_records_get_a_ttft_chart():
    recs = [_rec("g", [0.05] * 5, task="text-generation", runner=r, batch_size=b, ttft_s=0.01 * b, tpot_s=0.005,
                 model=m) for r in ("torch", "pipeline") for b in (1, 4) for m in ("synthetic:gpt2-tiny", "x")]
    page = build_report(_frame(recs))
    assert 'alt="Time to first token and per output token"' in page
    assert "<h2>Generation</h2>" in page


def test_variants_stay_apart_and_gpu_sections_appear():
    def rec(runner, samples, **kw):
        r = _rec("r1", samples, runner=runner, **kw)
        case = Case("fill-mask", "synthetic:bert-tiny", runner=runner, batch_size=kw.get("batch_size", 1), seq_len=16,
                    compiled=kw.get("compiled", False))
        r.update(case_id=case.case_id, pair_id=case.pair_id)
        return r

    gpu = dict(device="cpu", gpu_alloc_peak_mb=512.0, energy_j_per_item=0.25, cuda_event_median_s=1e-3,
               flops_per_call=2e9, achieved_tflops=2.0, peak_tflops=400.0, peak_fraction=0.005,
               peak_probe="fp32 matmul 8192x8192", attn_impl="sdpa")
    df = _frame([
        rec("torch", [1e-3] * 5, **gpu), rec("pipeline", [2e-3] * 5, **gpu),
        rec("torch", [5e-4] * 5, compiled=True, compile_s=12.5, **gpu),
        rec("pipeline", [9e-4] * 5, compiled=True, compile_s=0.0, **gpu),
        rec("torch", [1e-3], batch_size=64, status="oom", message="CUDA out of memory", **gpu),
        rec("pipeline", [1e-3], batch_size=64, status="oom", message="CUDA out of memory", **gpu),
    ])
    page = build_report(df)
    assert "synthetic:bert-tiny [compiled]" in page          # compiled cells are not merged with eager ones
    assert "Largest batch that fit" in page and "Devices, compilation and energy" in page
    assert "12.5" in page and "0.5%" in page                   # compile seconds; fraction of the matmul peak
    from benchbed.summary import format_table

    table = format_table(df.to_dict("records"))
    rows = [ln for ln in table.splitlines() if ln.startswith("fill-mask")]
    assert any(" compiled " in ln for ln in rows) and any(" - " in ln.replace("  ", " ") for ln in rows)
    assert "fill-mask synthetic:bert-tiny torch cpu fp32 s16: batch 1 (batch 64 ran out of memory)" in table


def test_panels_laid_out_from_their_text_keep_every_label_on_the_figure():
    """`laid_out` computes margins from titles and tick labels instead of measuring them by
    rendering (two thirds of a report's time): every title, tick label and axis label must still
    land inside the figure and off the neighbouring panels."""
    from benchbed.report.figures import fit_margins, grid, laid_out, plain_log

    fig, axes = grid(5, width=4.2)
    for k, ax in enumerate(axes):
        ax.bar(range(8), np.geomspace(1, 4000, 8))
        ax.set_xticks(range(8), [f"pipeline b{2 ** i} s{128 * (k + 1)}" for i in range(8)], rotation=60, fontsize=6)
        plain_log(ax)
        ax.set_ylabel("ms per call (median)")
        ax.set_title("token-classification · packaged:all-minilm-l6-v2 · cpu · bf16\nsecond line")
    assert fit_margins(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    texts = [t for ax in axes for t in (*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title, ax.yaxis.label)
             if t.get_text() and t.get_visible()]
    extents = [t.get_window_extent(renderer) for t in texts]
    assert all(e.x0 >= box.x0 - 1 and e.x1 <= box.x1 + 1 and e.y0 >= box.y0 - 1 and e.y1 <= box.y1 + 1 for e in extents)
    panels = [ax.get_window_extent(renderer) for ax in axes]
    for ax, title in ((ax, ax.title.get_window_extent(renderer)) for ax in axes):
        for other, panel in zip(axes, panels):
            if other is not ax:
                assert not title.overlaps(panel), "a title runs into the panel above it"
    svg = laid_out(fig)
    assert svg.startswith(b"<?xml") and b"mathdefault" not in svg  # plain tick labels, no mathtext


def _killed_in_a_worker(parent_pid):
    """A chart whose worker process dies (SIGKILL) mid-draw; drawn in the parent it succeeds."""
    import os
    import signal

    if os.getpid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)
    return b"<svg/>", "drawn here"


def test_charts_drawn_by_workers_give_the_same_page_and_a_dead_worker_costs_nothing(real_results):
    import os
    import re

    import psutil

    from benchbed.commands.common import load
    from benchbed.report.parallel import ChartPool

    df = load([str(real_results)], "results")
    strip = lambda page: re.sub(r"generated [0-9-]+ [0-9:]+ UTC", "", page)  # noqa: E731
    assert strip(build_report(df, workers=2)) == strip(build_report(df, workers=1))
    with ChartPool(2) as pool:
        later = pool.submit(_killed_in_a_worker, os.getpid())
        assert later() == (b"<svg/>", "drawn here")  # the worker died: drawn here instead, no error
    assert not psutil.Process().children(recursive=True)  # the pool's workers are gone
