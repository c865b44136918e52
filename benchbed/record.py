"""The flat record: one row per case per run, its columns, their types and the schema version.

Units live in column names (``_s``, ``_mb``). Raw samples are kept beside their statistics, so
every statistic can be recomputed and runs can be merged by concatenating samples.

Schema history:
  1 — first version.
  2 — ``pass_index``: which of a run's interleaved passes over the matrix measured this record
      (0 when the run made one pass); a case measured in N passes has N records in the run.
  3 — GPUs, precisions and memory: ``quant_method``, ``compile_backend``, ``compile_s``,
      ``compile_graphs``, ``tf32``, ``isolated``, ``memory_cap_mb``, ``event_samples_s`` and
      ``cuda_event_median_s`` (CUDA events around the same timed calls), ``gpu_util_mean_pct``,
      ``gpu_power_mean_w``, ``energy_method``, ``peak_tflops``, ``peak_probe``, ``peak_fraction``,
      ``env_torchao``.
  4 — no new column; model names are canonical: an alias (``minilm``, ``bert-tiny``) is resolved
      before the case id is made, so ``bert-tiny`` and ``synthetic:bert-tiny`` are one case.
      Migration rule (`migrate`, applied by every reader): a record of version 3 or older whose
      ``model`` is an alias gets the canonical name and the ``case_id`` / ``pair_id`` the same
      case has now, but only when its stored ``case_id`` is reproduced exactly from its own
      columns first (so a record is never re-keyed on a guess); otherwise it is left as it was.
  5 — N runners per cell against a reference, timed in the same window: ``reference`` (the
      runner this record's parity and ratio are against), ``pairing`` (``interleaved`` or
      ``sequential``), ``sample_blocks`` (the block index of each sample when interleaved),
      ``ref_ratio`` / ``ref_ratio_low`` / ``ref_ratio_high`` (this runner's median ÷ the
      reference's, from paired blocks when interleaved, with its 95% CI), ``setup_s`` (one-off
      preparation of the runner outside timed calls, e.g. an ONNX export). What else used the
      machine while the cell was timed (`benchbed.measure.interference`): ``interfered``,
      ``interference`` (the one-line reason), ``others_cpu_cores`` (other processes' CPU use, in
      cores), ``steal_cores``, ``load_avg_1m``, ``cpu_mhz``, ``cores_available``. When and where
      the cell was measured: ``cell_started_at`` (UTC), ``cell_s`` (its wall time) and
      ``cluster_node`` (the Ray node id on a cluster, else null). ``tokens_per_s`` is
      now null for image and audio tasks (their ``seq_len`` is pixels or milliseconds). Migration
      rule: records of version 4 or older get ``reference`` = ``torch`` and ``pairing`` =
      ``sequential`` (what they were); readers recompute their ratios from the samples.
  6 — the host yardstick (`benchbed.measure.yardstick`), timed in the blocks of every interleaved
      cell: ``host_samples_s`` (its raw samples), ``host_median_s`` (their median: the machine's
      speed while this record was measured; ``compare --normalize host`` divides by it) and
      ``host_yardstick`` (the workload's version; figures of different versions are not
      normalised against each other). Null for older records and ``--pairing sequential``.
      On CUDA, what else held the GPU while the cell was timed: ``gpu_other_processes`` (processes
      other than this one on the cell's GPU, from NVML at both ends of the window) and
      ``gpu_throttle`` (NVML clock-event reasons seen, comma-separated); another process, or
      clocks held down by heat, a power brake or a hardware slowdown, marks the record interfered.
      Workloads (`benchbed.workloads`): ``scenario`` (``latency``, ``dataset`` or ``server``;
      older records are ``latency``), where real inputs came from (``inputs_source``,
      ``inputs_column``, ``inputs_examples`` in the source, ``inputs_digest``), the lengths of the
      examples measured (``input_lens``, raw, and ``input_len_min/median/p90/max``; tokens for text) and ``padding_waste``
      (padded ÷ real tokens, per runner: it depends on how the runner batches). Dataset scenario:
      ``examples`` per pass, ``workers`` (DataLoader workers of the pipeline), ``examples_per_s``
      and ``first_result_s``; each sample is one pass over the examples. Server scenario, one
      record per runner and offered rate: each sample is one request's latency (arrival to
      result); ``offered_rate``, ``achieved_rate``, ``requests``, ``completed``, ``dropped``
      (queue full), ``timed_out``, ``queue_median_s``, ``queue_p99_s``, ``service_median_s``,
      ``batch_mean``, ``max_batch``, ``max_wait_ms``, ``slo_ms`` and ``slo_met`` (p99 within it).
      Migration rule: older records get ``scenario`` = ``latency``.
  7 — training tasks (`benchbed.tasks.training`): each sample is one optimizer step;
      ``grad_accum`` (micro-batches per step; ``workers`` are the DataLoader's), ``train_steps``
      (steps the runner took before its record was made: parity, warm-up and timed),
      ``loss_curve`` (the loss of each of those steps) and ``step_times_s`` (each one's seconds by
      the runner's own clock, parity steps included), ``loss_first`` / ``loss_last``,
      ``loss_max_diff`` (largest |loss difference| from the reference's curve over the steps both
      took), ``target_loss``, ``steps_to_loss`` and ``time_to_loss_s`` (steps and seconds until the
      loss first reached the target); the training phases ``data_s``, ``bwd_s``, ``optim_s`` and
      ``after_s`` (``fwd_s`` as before). ``items_per_s`` counts examples per optimizer step
      (batch x accumulation). No migration: older records have no training.
      Server scenario with ``--rate auto`` (a knee search per runner, `benchbed.workloads.knee`):
      ``sustainable_rate`` (the highest rate met, null when none), ``capacity_rate`` (max batch ÷
      the service time of a full batch: where the search started from), and the probes in the
      order served: ``probe_rates``, ``probe_p99_s``, ``probe_met``; ``offered_rate`` is the rate
      whose requests are the record's samples (the knee). Generation in the server scenario:
      ``ttft_s`` / ``tpot_s`` are medians over requests (time to first token from the request's
      arrival, so queueing included; time per later token of its batch) and ``ttft_p99_s``.
  8 — the testbed named by what it is (`benchbed.env`): ``env_cpu_id`` (vendor family/model/
      stepping), ``env_cpu_isa`` (avx2, avx512*, amx*, neon, sve… present), ``env_torch_cpu_capability``,
      ``env_physical_cores``, ``env_memory_gib``; the runtimes the runners drive: ``env_onnxruntime``
      (with its providers), ``env_accelerate``, ``env_datasets``, ``env_ray``. No migration: older
      records have nulls there, and a null is "unknown", never a difference (`env_differences`).
  9 — the ratio as a gated metric: ``ratio_samples`` (this runner's per-block ratios to the
      reference, median of its block ÷ median of the reference's same block, one per block both
      ran: what ``compare --metric ratio`` and ``history --metric ratio`` judge). Null for the
      reference runner itself, ``--pairing sequential`` and older records (whose ratio cases are
      unjudged, never a pass). ``--inject-slowdown RUNNER=FRACTION`` slows one runner: its
      record's ``options`` says so.
  10 — GPU figures that belong to the runner (issue #25): ``gpu_alloc_peak_mb`` is now the
      runner's own peak (``gpu_alloc_state_mb``, the tensors it holds between calls — its weights;
      in training its copy's weights, gradients and optimizer state — plus ``gpu_alloc_call_mb``,
      the allocator's increase over one call), where it was the allocator's absolute peak, which
      counted every other runner's copy; ``gpu_alloc_base_mb`` is what the process had allocated
      when the call began. Null for ONNX Runtime (its arena is outside torch's allocator).
      ``gpu_nvml_increase_mb`` (NVML's device memory rise over the pass), ``gpu_counters_unavailable``
      (the NVML counters the device could not give, and why: a MIG instance has no utilisation,
      power or energy). ``gpu_power_mean_w`` is energy ÷ time where the energy counter exists;
      ``energy_j_per_item`` divides by batch × accumulation; ``gpu_throttle`` also names the
      throttle counters that advanced during the window, with their seconds; ``tf32_cudnn``
      (cuDNN's TF32 switch, on by default, beside ``tf32`` for matmuls). The host yardstick on CUDA
      is version 2 (launch-bound host work, not a device matmul). Migration rule: CUDA records older
      than 10 get ``gpu_alloc_peak_mb`` = null (an absolute peak is not comparable with an own one).
      Environments (``--env NAME=SPEC``, runners ``RUNNER@NAME``): ``env_name``, ``env_spec`` (SPEC as
      given), ``env_packages_digest`` (every distribution and version importable there), and the
      ``env_*`` versions as seen inside that environment; null for runners in the run's own.
  11 — serving (issue #24): ``endpoint_url`` and ``endpoint_protocol`` of an ``endpoint:NAME``
      runner (a service benchbed did not start); ``itl_median_s`` / ``itl_p99_s``, the gaps between
      streamed tokens (inter-token latency); ``service_p99_s`` (server and http scenarios: the p99 of
      the service time alone, which says whether an SLO is within the service's own tail, where no
      load level can meet it reliably). The ``http`` scenario declares its own columns
      (`benchbed.execute.drivers.http`). No migration: older records have no endpoints.
  12 — precision per second (issue #31): ``stop_rule`` (``ratio``: a cell of two or more runners
      timed interleaved stops on its ratios' CIs; ``latency``: a runner alone, or runners timed one
      after the other, on each median's CI; ``requests``: server and http scenarios, a fixed number
      of requests), ``ratio_ci_target`` (the
      half-width asked for, ``--ratio-ci``) and ``ratio_ci_half`` (the half-width this runner's
      ratio reached, relative: max(point − low, high − point) ÷ point; null for the reference;
      inf below 6 blocks, where the interval shown is (min, max) and no 95% CI exists).
      Paired ratio CIs (``ref_ratio_low`` / ``_high``) are now the exact order-statistic CI of the
      per-block ratios (a bootstrap of few blocks under-covered, `measure.paired`). Training (issue
      #34): ``optimizer`` (sgd, adam, adamw), ``trainer_optimizer`` (how the Trainer got it: its own
      ``optim`` name, or ``optimizers=(opt, None)``), ``optimizer_state_mb`` (the optimizer's state:
      none for plain SGD, two moments per parameter for Adam and AdamW). No migration.
  13 — why it is slower (issue #33, ``--explain``): ``explain_status`` (ok, failed, skipped),
      ``explain_message`` (why not ok), ``explain_s`` (the explain pass's own seconds, outside the
      timed window), ``explain_overhead`` (the sampling profile's seconds per call ÷ the timed
      median) and ``profile_json`` (JSON text: the stages' clock times, the Python functions'
      and the operators' seconds per call by stage; `benchbed.explain` reads it). What a cell spent
      on each part of its work (issue #31): ``cost_load_s`` (the model and the inputs),
      ``cost_build_s`` (this runner built and prepared), ``cost_parity_s``, ``cost_timing_s`` (the
      timed window, warm-up included, all runners) and ``cost_passes_s`` (this runner's phase,
      FLOP, memory and device-counter passes); ``cell_s`` is the whole. No migration.
  14 — the seed's comparisons (issue #34): ``serve_version`` and ``serve_options`` of the
      ``transformers-serve`` runner (``--serve transformers``: the server's package and version,
      the ``--serve-option`` values it was started with); ``usage_completion_tokens`` (median over
      answers of the completion tokens a service reported in its ``usage``) beside
      ``client_stream_tokens`` (median over streams of the pieces of text the client received).
      No migration: older records have none of them.
  15 — #31's costs split: ``cost_warmup_s`` (the timed step less its window(s): warm-up, a served cell's rate search),
      a runner's passes one by one: ``cost_phases_s``, ``cost_flops_s``, ``cost_memory_s``, ``cost_resource_s``.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["SCHEMA_VERSION", "SCHEMA", "COLUMNS", "STATUSES", "empty_record", "to_table", "pool_records",
           "migrate"]

SCHEMA_VERSION = 15
STATUSES = ("ok", "skipped", "error", "oom", "timeout")

_f, _i, _s, _b = pa.float64(), pa.int64(), pa.string(), pa.bool_()

COLUMNS: list[tuple[str, pa.DataType]] = [
    # identity
    ("schema_version", _i), ("run_id", _s), ("case_id", _s), ("pair_id", _s), ("pass_index", _i), ("started_at", pa.timestamp("us", tz="UTC")),
    ("suite", _s), ("reference", _s), ("pairing", _s),
    # case
    ("task", _s), ("model", _s), ("model_params", _i), ("model_config", _s), ("model_weights", _s), ("runner", _s),
    ("device", _s), ("dtype", _s), ("batch_size", _i), ("seq_len", _i), ("new_tokens", _i), ("attn_impl", _s),
    ("compiled", _b), ("compile_backend", _s), ("quant_method", _s), ("tf32", _b), ("tf32_cudnn", _b), ("threads", _i),
    ("options", _s),
    ("isolated", _b), ("memory_cap_mb", _f),
    # outcome
    ("status", _s), ("message", _s),
    # parity
    ("parity_ok", _b), ("parity_detail", _s),
    # time
    ("samples_s", pa.list_(_f)), ("sample_blocks", pa.list_(_i)), ("n_samples", _i), ("warmup", _i), ("stop_reason", _s), ("stop_rule", _s), ("ratio_ci_target", _f), ("ratio_ci_half", _f), ("measure_s", _f),
    ("lat_min_s", _f), ("lat_median_s", _f), ("lat_mean_s", _f), ("lat_p90_s", _f), ("lat_p95_s", _f),
    ("lat_p99_s", _f), ("lat_max_s", _f), ("lat_std_s", _f), ("lat_iqr_s", _f),
    ("lat_median_ci_low_s", _f), ("lat_median_ci_high_s", _f), ("noise", _s),
    ("ref_ratio", _f), ("ref_ratio_low", _f), ("ref_ratio_high", _f), ("ratio_samples", pa.list_(_f)),
    ("setup_s", _f),
    ("host_samples_s", pa.list_(_f)), ("host_median_s", _f), ("host_yardstick", _i),
    # workload: where the inputs came from and how the runners were driven (scenario)
    ("scenario", _s), ("inputs_source", _s), ("inputs_column", _s), ("inputs_examples", _i), ("inputs_digest", _s),
    ("input_lens", pa.list_(_i)), ("input_len_min", _f), ("input_len_median", _f), ("input_len_p90", _f),
    ("input_len_max", _f),
    ("padding_waste", _f), ("examples", _i), ("workers", _i), ("examples_per_s", _f), ("first_result_s", _f),
    ("offered_rate", _f), ("achieved_rate", _f), ("requests", _i), ("completed", _i), ("dropped", _i),
    ("timed_out", _i), ("queue_median_s", _f), ("queue_p99_s", _f), ("service_median_s", _f), ("batch_mean", _f),
    ("max_batch", _i), ("max_wait_ms", _f), ("slo_ms", _f), ("slo_met", _b),
    ("sustainable_rate", _f), ("capacity_rate", _f), ("probe_rates", pa.list_(_f)), ("probe_p99_s", pa.list_(_f)),
    ("probe_met", pa.list_(_b)),
    # training: one sample is one optimizer step
    ("grad_accum", _i), ("optimizer", _s), ("trainer_optimizer", _s), ("optimizer_state_mb", _f),
    ("train_steps", _i), ("loss_curve", pa.list_(_f)), ("step_times_s", pa.list_(_f)),
    ("loss_first", _f), ("loss_last", _f), ("loss_max_diff", _f), ("target_loss", _f), ("steps_to_loss", _i),
    ("time_to_loss_s", _f),
    # interference: what else used the machine during the timed calls
    ("interfered", _b), ("interference", _s), ("others_cpu_cores", _f), ("steal_cores", _f), ("load_avg_1m", _f),
    ("cpu_mhz", _f), ("cores_available", _i), ("gpu_other_processes", _i), ("gpu_throttle", _s),
    ("cell_started_at", pa.timestamp("us", tz="UTC")), ("cell_s", _f), ("cluster_node", _s),
    ("compile_s", _f), ("compile_graphs", _i), ("event_samples_s", pa.list_(_f)), ("cuda_event_median_s", _f),
    # rate
    ("items_per_s", _f), ("tokens_per_s", _f), ("ttft_s", _f), ("tpot_s", _f), ("ttft_p99_s", _f),
    # phases
    ("pre_s", _f), ("fwd_s", _f), ("post_s", _f), ("data_s", _f), ("bwd_s", _f), ("optim_s", _f), ("after_s", _f),
    # memory
    ("cpu_rss_peak_delta_mb", _f), ("cpu_rss_method", _s), ("gpu_alloc_peak_mb", _f), ("gpu_reserved_peak_mb", _f),
    ("gpu_alloc_call_mb", _f), ("gpu_alloc_state_mb", _f), ("gpu_alloc_base_mb", _f),
    ("gpu_nvml_used_peak_mb", _f), ("gpu_nvml_increase_mb", _f), ("gpu_util_mean_pct", _f), ("gpu_power_mean_w", _f),
    ("gpu_counters_unavailable", _s),
    # efficiency
    ("flops_per_call", _f), ("achieved_tflops", _f), ("peak_tflops", _f), ("peak_probe", _s), ("peak_fraction", _f),
    ("energy_j_per_item", _f), ("energy_method", _s),
    # environment
    ("env_host", _s), ("env_os", _s), ("env_cpu", _s), ("env_cores", _i), ("env_gpu", _s), ("env_gpu_driver", _s),
    ("env_cuda", _s), ("env_python", _s), ("env_torch", _s), ("env_transformers", _s), ("env_tokenizers", _s),
    ("env_benchbed", _s), ("env_git_sha", _s), ("env_git_dirty", _b), ("env_ci", _b),
    ("env_tokenizers_parallelism", _s), ("env_torchao", _s),
    ("env_cpu_id", _s), ("env_cpu_isa", _s), ("env_torch_cpu_capability", _s), ("env_physical_cores", _i),
    ("env_memory_gib", _i), ("env_onnxruntime", _s), ("env_accelerate", _s), ("env_datasets", _s), ("env_ray", _s),
    ("env_name", _s), ("env_spec", _s), ("env_packages_digest", _s),
    ("endpoint_url", _s), ("endpoint_protocol", _s), ("itl_median_s", _f), ("itl_p99_s", _f), ("service_p99_s", _f),
    ("serve_version", _s), ("serve_options", _s), ("usage_completion_tokens", _f), ("client_stream_tokens", _f),
    # explain: one profiled pass per runner after timing
    ("explain_status", _s), ("explain_message", _s), ("explain_s", _f), ("explain_overhead", _f), ("profile_json", _s),
    # what the cell spent on each part of its work
    ("cost_load_s", _f), ("cost_build_s", _f), ("cost_parity_s", _f), ("cost_timing_s", _f), ("cost_passes_s", _f),
    ("cost_warmup_s", _f), ("cost_phases_s", _f), ("cost_flops_s", _f), ("cost_memory_s", _f), ("cost_resource_s", _f),
]

SCHEMA = pa.schema([pa.field(name, typ) for name, typ in COLUMNS],
                   metadata={"benchbed_schema_version": str(SCHEMA_VERSION)})


def empty_record() -> dict[str, Any]:
    """Every column present, all null except the schema version."""
    rec: dict[str, Any] = {name: None for name, _ in COLUMNS}
    rec["schema_version"] = SCHEMA_VERSION
    return rec


#: Arrow types a plugin scenario may declare for the columns it adds (`benchbed.scenarios.Scenario`).
PLUGIN_TYPES: dict[str, pa.DataType] = {"float64": _f, "int64": _i, "string": _s, "bool": _b,
                                        "list<float64>": pa.list_(_f)}


def _plugin_fields(keys: set[str]) -> list[pa.Field]:
    """The fields of registered scenarios' declared columns among `keys` (after the schema's own)."""
    from .scenarios import declared_columns

    names = {n for n, _ in COLUMNS}
    out = []
    for name, typ in declared_columns():
        if name in keys and name not in names:
            if typ not in PLUGIN_TYPES:
                raise KeyError(f"scenario column {name!r}: type {typ!r} is not one of {', '.join(PLUGIN_TYPES)}")
            out.append(pa.field(name, PLUGIN_TYPES[typ]))
    return out


def to_table(records: list[dict[str, Any]]) -> pa.Table:
    """Records as an Arrow table with the fixed schema, plus the columns a registered scenario
    declares when a record carries them (other unknown keys are an error, not dropped)."""
    keys = set().union(*records) if records else set()
    plugin = _plugin_fields(keys) if keys - {n for n, _ in COLUMNS} else []
    schema = pa.schema(list(SCHEMA) + plugin, metadata=SCHEMA.metadata)
    names = [f.name for f in schema]
    extra = keys - set(names)
    if extra:
        raise KeyError(f"record has columns not in schema v{SCHEMA_VERSION} nor declared by a scenario: "
                       f"{sorted(extra)}")
    rows = [{n: _plain(r.get(n)) for n in names} for r in records]
    for f in plugin:  # a plug-in's column of the wrong type is dropped and said, never the cell lost
        try:
            pa.array([row[f.name] for row in rows], type=f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            for row in rows:
                if row[f.name] is not None:
                    row[f.name] = None
                    note = f"column {f.name} dropped: not the {f.type} its scenario declares"
                    row["message"] = "; ".join(x for x in (row.get("message"), note) if x)
    return pa.Table.from_pylist(rows, schema=schema)


def _plain(value: Any) -> Any:
    """A record value as Arrow takes it: pandas' missing timestamp (NaT), as a record read back
    through pandas holds it, is a null like None."""
    return None if type(value).__name__ == "NaTType" else value


def pool_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (run, case): the passes of a case concatenated (merging concatenates samples)
    and every statistic recomputed from the pooled samples by the same `summarize` that makes a
    single record (a pooled record equals one made from the concatenated samples). Block indices
    are offset per pass so blocks of different passes never pair. Single records pass as they are."""
    import numpy as np

    from .measure.stats import summarize

    groups: dict[tuple, list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault((rec.get("run_id"), rec.get("case_id")), []).append(rec)
    out = []
    for group in groups.values():
        ok = [r for r in group if r.get("status") == "ok" and r.get("samples_s") is not None]
        if len(group) == 1 or len(ok) < 2:
            out.append(group[0] if not ok else ok[0])
            continue
        merged = dict(ok[0])
        x = np.concatenate([np.asarray(r["samples_s"], dtype=float) for r in ok])
        stats = summarize(x)
        merged.update(stats.as_columns())
        merged.update(samples_s=x.tolist(), n_samples=stats.n,
                      measure_s=float(sum(r.get("measure_s") or 0.0 for r in ok)))
        for rate in ("items_per_s", "tokens_per_s"):  # per-call counts over the pooled median
            if merged.get(rate) and ok[0].get("lat_median_s"):
                merged[rate] = ok[0][rate] * ok[0]["lat_median_s"] / stats.median if stats.median > 0 else None
        blocks = [r.get("sample_blocks") for r in ok]
        if all(b is not None and len(b) == len(r["samples_s"]) for b, r in zip(blocks, ok)):
            offset, pooled = 0, []
            for b in blocks:
                pooled += [int(k) + offset for k in b]
                offset = max(pooled) + 1
            merged["sample_blocks"] = pooled
        else:
            merged["sample_blocks"] = None
        hosts = [r.get("host_samples_s") for r in ok]
        if all(h is not None and len(h) for h in hosts) and len({r.get("host_yardstick") for r in ok}) == 1:
            pooled_host = np.concatenate([np.asarray(h, dtype=float) for h in hosts])
            merged.update(host_samples_s=pooled_host.tolist(), host_median_s=float(np.median(pooled_host)))
        else:
            merged.update(host_samples_s=None, host_median_s=None)
        merged.update(ref_ratio=None, ref_ratio_low=None, ref_ratio_high=None)  # recomputed by readers
        ratios = [r.get("ratio_samples") for r in ok]  # blocks of different passes never pair: concatenated
        merged["ratio_samples"] = (np.concatenate([np.asarray(x, dtype=float) for x in ratios]).tolist()
                                   if all(x is not None and len(x) for x in ratios) else None)
        out.append(merged)
    return out


#: Keys the engine adds to a record's ``options`` that are not part of the case (so not of its id).
_ENGINE_OPTIONS = ("inject_slowdown", "preprocessor")


def _rekeyed(rec: dict[str, Any], model: str) -> tuple[str, str] | None:
    """(case_id, pair_id) of `rec`'s case under `model`, if its stored id is reproduced first."""
    import itertools
    import json
    import math
    from dataclasses import replace

    from .spec import Case

    def plain(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    try:
        opts = json.loads(plain(rec.get("options")) or "{}")
    except ValueError:
        return None
    new_tokens = plain(rec.get("new_tokens"))
    for drop in itertools.chain.from_iterable(itertools.combinations(_ENGINE_OPTIONS, k) for k in range(3)):
        options = tuple(sorted((k, v) for k, v in opts.items() if k not in drop))
        for attn in dict.fromkeys((None, plain(rec.get("attn_impl")))):  # the case's, or the one it loaded
            case = Case(task=rec["task"], model=rec["model"], runner=rec["runner"], device=rec["device"],
                        dtype=rec["dtype"], batch_size=int(rec["batch_size"]), seq_len=int(rec["seq_len"]),
                        new_tokens=None if new_tokens is None else int(new_tokens), options=options,
                        attn_impl=attn, compiled=bool(plain(rec.get("compiled")) or False))
            if case.case_id == rec["case_id"]:
                now = replace(case, model=model)
                return now.case_id, now.pair_id
    return None


def migrate(df: Any) -> Any:
    """Apply the schema history's migration rules to a table read back (see the module docstring)."""
    from .spec import MODEL_ALIASES

    if df.empty or "model" not in df.columns:
        return df
    version = df["schema_version"].fillna(0)
    if "scenario" in df.columns and ((version < 6) & df["scenario"].isna()).any():
        df = df.copy()
        df.loc[(version < 6) & df["scenario"].isna(), "scenario"] = "latency"
    if "reference" in df.columns and ((version < 5) & df["reference"].isna()).any():
        df = df.copy()
        old5 = (version < 5) & df["reference"].isna()
        df.loc[old5, "reference"] = "torch"  # what records before schema 5 were compared with, whatever the default is now
        df.loc[old5 & df["pairing"].isna(), "pairing"] = "sequential"
    if "gpu_alloc_peak_mb" in df.columns and "device" in df.columns:
        absolute = (version < 10) & df["device"].astype(str).str.startswith("cuda") & df["gpu_alloc_peak_mb"].notna()
        if absolute.any():
            df = df.copy()
            df.loc[absolute, "gpu_alloc_peak_mb"] = None
    old = df["model"].isin(list(MODEL_ALIASES)) & (df["schema_version"].fillna(0) < 4)
    if not old.any():
        return df
    df = df.copy()
    for idx in df.index[old]:
        rec = df.loc[idx].to_dict()
        model = MODEL_ALIASES[rec["model"]]
        try:
            ids = _rekeyed(rec, model)
        except (TypeError, ValueError, KeyError):
            ids = None
        if ids:
            df.at[idx, "model"], df.at[idx, "case_id"], df.at[idx, "pair_id"] = model, ids[0], ids[1]
    return df
