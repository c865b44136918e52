"""The report's http section (issues #24, #34): the HTTP tax against the in-process server
scenario for benchbed's own servers, and the model behind ``transformers serve`` set beside the
runners on benchbed's server at the same offered rate, with its TTFT and ITL — never a "tax"
against itself, since it is a server in every scenario."""

from __future__ import annotations

import pandas as pd

from benchbed.report.sections.http import section

CELL = {"task": "text-generation", "model": "synthetic:gpt2-tiny", "device": "cpu", "dtype": "fp32",
        "batch_size": 1, "seq_len": 16, "offered_rate": 4.0, "achieved_rate": 4.0, "sustainable_rate": None,
        "probe_rates": None, "http_errors": 0, "slo_met": False}


def _rec(runner, scenario, median, backend=None, **kw):
    return {**CELL, "runner": runner, "scenario": scenario, "lat_median_s": median, "lat_p99_s": median * 2,
            "samples_s": [median * f for f in (0.9, 1.0, 1.1)], "serve_backend": backend, "server_workers": 1,
            "serve_version": None, "serve_options": None, "ttft_s": None, "tpot_s": None, "itl_median_s": None,
            **kw}


def test_transformers_serve_is_set_beside_benchbed_servers_and_gets_no_tax():
    http = pd.DataFrame([
        _rec("torch", "http", 0.080, "uvicorn"),
        _rec("transformers-serve", "http", 0.100, "transformers", serve_version="transformers 5.24.0",
             serve_options="chat", server_workers=None, ttft_s=0.020, itl_median_s=0.008, tpot_s=0.008)])
    http.attrs["latest"] = pd.DataFrame([_rec("torch", "server", 0.070),
                                         _rec("transformers-serve", "server", 0.120)])
    text = section(http)
    assert "transformers 5.24.0 (chat) p50 100 ms, TTFT 20 ms, ITL 8 ms" in text
    assert "beside it torch on uvicorn ×1 80 ms (×1.25)" in text
    assert "torch over HTTP (uvicorn ×1) adds +10.00 ms" in text
    assert "transformers-serve over HTTP" not in text  # no tax against its own server-scenario record
