"""The server scenario's part of the report: the rate each runner sustains at the SLO, the
hockey stick of request latency against offered load, and every load level."""

from __future__ import annotations

from typing import Any

from ..charts import Chart, finish_panel, laid_out, panel_title, plain, plain_log, style, workload_panels
from ..html import esc, figure, fmt_ms, fmt_num, table

__all__ = ["section", "server_load"]


def section(served: Any) -> str:
    """The ok server-scenario records of a run, as report HTML."""
    from ...summary import goodput

    out = []
    rows = goodput(served.to_dict("records"))
    by_cell: dict[tuple, list[dict[str, Any]]] = {}
    for g in rows:
        r = g["rec"]
        by_cell.setdefault((r["task"], r["model"], r["device"], r["dtype"], f"b{r['batch_size']}",
                            f"s{r['seq_len']}"), []).append(g)
    for key, gs in by_cell.items():
        ref = next((g for g in gs if g["runner"] == g["rec"].get("reference")), None)
        parts = []
        for g in gs:
            rate = g["sustainable_rate"]
            text = f"{esc(g['runner'])} sustains {rate:.4g} req/s" if rate is not None else \
                f"{esc(g['runner'])} meets it at none of the rates tried"
            if ref is not None and g is not ref and rate and ref["sustainable_rate"]:
                text += f" ({rate / ref['sustainable_rate']:.2f}× {esc(ref['runner'])}'s)"
            parts.append(text)
        slo = gs[0]["slo_ms"]
        out.append(f'<p class="sentence">{" · ".join(esc(k) for k in key)}: at p99 ≤ {slo:g} ms, '
                   f'{"; ".join(parts)} (of rates {", ".join(f"{r:.4g}" for r in gs[0]["rates"])}).</p>')
    out.append(figure(server_load(served), "Request latency vs offered load (open-loop Poisson arrivals): "
                                              "p99 thick, p50 dotted; the dashed line is the SLO"))
    rows_html = []
    for _, r in served.sort_values(["task", "model", "offered_rate", "runner"]).iterrows():
        rows_html.append([esc(r["task"]), esc(r["model"]), esc(r["runner"]), fmt_num(r["offered_rate"]),
                          fmt_num(r["achieved_rate"]), fmt_ms(r["lat_median_s"]), fmt_ms(r["lat_p99_s"]),
                          fmt_ms(r["queue_median_s"]), fmt_ms(r["service_median_s"]), fmt_num(r["batch_mean"]),
                          esc(int(r["dropped"] or 0)), "✓" if r["slo_met"] is True else "✗"])
    out.append("<details><summary>every load level</summary>" + table(
        ["task", "model", "runner", "offered req/s", "served req/s", "p50 ms", "p99 ms", "queue p50 ms",
         "service p50 ms", "mean batch", "dropped", "SLO met"], rows_html, numeric=set(range(3, 11)))
        + "</details>")
    return "".join(out)


def server_load(latest: Any) -> Chart:
    """The hockey stick: p50 (thin) and p99 (thick) request latency against the offered rate, every
    runner, one panel per task / model / device / dtype / length, with the SLO as a dotted line."""
    panels = workload_panels(latest, "server", "offered_rate", 3.8)
    if panels is None:
        return None
    fig, runners, pairs, note = panels
    for ax, (key, grp) in pairs:
        for runner in runners:
            s = grp[grp["runner"] == runner].sort_values("offered_rate")
            if s.empty:
                continue
            st = style(runners, runner)
            probes = s.iloc[0].get("probe_rates") if "probe_rates" in s.columns else None
            if probes is not None and not isinstance(probes, float) and len(probes):
                # --rate auto: the knee search's probes (p99 only), the knee marked
                pts = sorted((float(r), float(p) * 1e3) for r, p in zip(probes, s.iloc[0]["probe_p99_s"])
                             if p is not None and p == p)
                ax.plot([r for r, _ in pts], [p for _, p in pts], label=plain(f"{runner} p99 (search)"), lw=2, **st)
                knee = s.iloc[0].get("sustainable_rate")
                if knee is not None and knee == knee:
                    ax.axvline(float(knee), color=st["color"], ls=":", lw=1)
                continue
            ax.plot(s["offered_rate"], s["lat_p99_s"] * 1e3, label=plain(f"{runner} p99"), lw=2, **st)
            ax.plot(s["offered_rate"], s["lat_median_s"] * 1e3, label=plain(f"{runner} p50"), lw=0.8, alpha=0.6,
                    color=st["color"], ls=":", marker=st["marker"], ms=3)
        slo = grp["slo_ms"].dropna()
        if not slo.empty:
            ax.axhline(float(slo.iloc[0]), color="black", ls="--", lw=0.8, label=f"SLO {float(slo.iloc[0]):g} ms")
        plain_log(ax)
        finish_panel(ax, "offered load (requests/s)", "request latency (ms)", panel_title(key))
    return laid_out(fig), note
