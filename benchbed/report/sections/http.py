"""The http scenario's part of the report: each runner over real HTTP beside the same runner in
the in-process server scenario of the same run — the HTTP tax per request at the same offered
rate (difference of median latencies, with a bootstrap CI), and at the knee (the sustainable
rate in-process and over HTTP, by server workers or Ray Serve replicas) — and every load level
with the server's own split of a request: queue, service, serialisation."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..html import esc, fmt_ms, fmt_num, table

__all__ = ["section", "http_tax", "pair_with_in_process"]

_CELL = ("task", "model", "device", "dtype", "batch_size", "seq_len", "runner")


def http_tax(http_samples: Sequence[float], local_samples: Sequence[float], seed: int = 0,
             resamples: int = 2000) -> tuple[float, float, float]:
    """(median over HTTP − median in-process, 95% CI low, high) in seconds: the two sets are
    independent requests, so each is resampled on its own."""
    a, b = np.asarray(http_samples, float), np.asarray(local_samples, float)
    rng = np.random.default_rng(seed)
    diffs = (np.median(rng.choice(a, (resamples, a.size)), axis=1)
             - np.median(rng.choice(b, (resamples, b.size)), axis=1))
    return float(np.median(a) - np.median(b)), float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def _rate(rec: Any) -> Any:
    rate = rec.get("offered_rate")
    return None if rate is None or rate != rate else round(float(rate), 6)


def pair_with_in_process(http: Any, latest: Any) -> list[tuple[Any, Any]]:
    """Each http record with the server-scenario record of the same cell and runner at the same
    offered rate (None when the run has none). With ``--rate auto`` the rates differ: the knee
    records are paired by cell and runner alone."""
    server = latest[latest["scenario"] == "server"] if latest is not None and "scenario" in latest else None
    out = []
    for _, h in http.iterrows():
        match = None
        if server is not None and not server.empty:
            same = server
            for col in _CELL:
                same = same[same[col] == h[col]]
            auto = h.get("sustainable_rate") is not None and h.get("sustainable_rate") == h.get("sustainable_rate") \
                and "probe_rates" in h and h["probe_rates"] is not None and not isinstance(h["probe_rates"], float)
            if not auto:
                same = same[[_rate(r) == _rate(h) for _, r in same.iterrows()]]
            match = same.iloc[-1] if not same.empty else None
        out.append((h, match))
    return out


def _serving(rec: Any) -> str:
    if rec.get("serve_backend") == "ray":
        return f"Ray Serve ×{int(rec.get('replicas') or 1)}"
    if rec.get("serve_backend") == "transformers":
        opts = rec.get("serve_options")
        return f"{rec.get('serve_version') or 'transformers serve'}{f' ({opts})' if isinstance(opts, str) and opts else ''}"
    return f"uvicorn ×{int(rec.get('server_workers') or 1)}"


def _knee(rec: Any) -> str:
    rate = rec.get("sustainable_rate") if rec is not None else None
    return "–" if rate is None or rate != rate else f"{float(rate):.4g}"


def section(http: Any) -> str:
    """The ok http-scenario records of a run (with the run's server records beside them)."""
    latest = http.attrs.get("latest")
    pairs = pair_with_in_process(http.sort_values(["task", "model", "runner", "offered_rate"]), latest)
    out = ['<p class="sentence">Each runner behind a real HTTP server on the loopback address, the same open-loop '
           'load as the server scenario over real sockets. The tax is the median request latency over HTTP minus '
           'the in-process server scenario\'s at the same offered rate, with its 95% bootstrap CI.</p>']
    sentences = []
    rows = []
    for h, s in pairs:
        if h.get("serve_backend") == "transformers":  # a server in every scenario: no in-process twin
            s = None
        tax = http_tax(h["samples_s"], s["samples_s"]) if s is not None and len(h["samples_s"]) and \
            len(s["samples_s"]) else None
        if tax is not None:
            sentences.append(
                f"{esc(h['task'])} · {esc(h['model'])} · b{int(h['batch_size'])}: {esc(h['runner'])} over HTTP "
                f"({esc(_serving(h))}) adds {tax[0] * 1e3:+.2f} ms per request [{tax[1] * 1e3:+.2f}, "
                f"{tax[2] * 1e3:+.2f}] at {fmt_num(h['offered_rate'])} req/s"
                + (f"; sustainable rate {_knee(h)} req/s over HTTP vs {_knee(s)} in-process"
                   if _knee(h) != "–" or _knee(s) != "–" else ""))
        rows.append([esc(h["task"]), esc(h["model"]), esc(h["runner"]), esc(_serving(h)), fmt_num(h["offered_rate"]),
                     fmt_num(h["achieved_rate"]), fmt_ms(h["lat_median_s"]), fmt_ms(h["lat_p99_s"]),
                     fmt_ms(h.get("server_queue_median_s")), fmt_ms(h.get("service_median_s")),
                     fmt_ms(h.get("serialize_median_s")),
                     fmt_ms(h.get("ttft_s")), fmt_ms(h.get("tpot_s")), fmt_ms(h.get("itl_median_s")),
                     fmt_ms(s["lat_median_s"]) if s is not None else "–",
                     f"{tax[0] * 1e3:+.2f} [{tax[1] * 1e3:+.2f}, {tax[2] * 1e3:+.2f}]" if tax else "–",
                     _knee(h), _knee(s), esc(int(h.get("http_errors") or 0)), "✓" if h.get("slo_met") is True else "✗"])
    sentences += _beside_transformers_serve(http)
    if sentences:
        out.append('<p class="sentence">' + "<br>".join(sentences) + "</p>")
    out.append(table(["task", "model", "runner", "served by", "offered req/s", "served req/s", "p50 ms", "p99 ms",
                      "server queue ms", "service ms", "serialise ms", "TTFT ms", "TPOT ms", "ITL ms",
                      "in-process p50 ms", "HTTP tax ms [95% CI]", "knee req/s (HTTP)", "knee req/s (in-process)",
                      "failed", "SLO met"], rows, numeric=set(range(4, 19))))
    return "".join(out)


def _beside_transformers_serve(http: Any) -> list[str]:
    """One sentence per ``--serve transformers`` record: its median latency against each other
    runner of the same cell at the same offered rate (benchbed's own server of that runner)."""
    out = []
    serve = http[http["serve_backend"] == "transformers"] if "serve_backend" in http else http.iloc[:0]
    for _, h in serve.iterrows():
        same = http[http["serve_backend"] != "transformers"]
        for col in _CELL[:-1]:
            same = same[same[col] == h[col]]
        same = same[[_rate(r) == _rate(h) for _, r in same.iterrows()]]
        parts = [f"{esc(r['runner'])} on {esc(_serving(r))} {fmt_ms(r['lat_median_s'])} ms "
                 f"(×{float(h['lat_median_s']) / float(r['lat_median_s']):.2f})"
                 for _, r in same.iterrows() if r.get("lat_median_s") and h.get("lat_median_s")]
        ttft = f", TTFT {fmt_ms(h.get('ttft_s'))} ms, ITL {fmt_ms(h.get('itl_median_s'))} ms" \
            if h.get("ttft_s") == h.get("ttft_s") and h.get("ttft_s") is not None else ""
        out.append(f"{esc(h['task'])} · {esc(h['model'])} at {fmt_num(h['offered_rate'])} req/s: "
                   f"{esc(_serving(h))} p50 {fmt_ms(h['lat_median_s'])} ms{ttft}"
                   + (f"; beside it {', '.join(parts)}" if parts else ""))
    return out
