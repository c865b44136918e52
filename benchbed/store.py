"""Crash-safe, concurrent-safe parquet storage of records.

Layout: ``<root>/<run_id>/<seq>-<case_id>-<nonce>.parquet``, one small file per finished case.
Each file is written under a dot-prefixed temporary name, fsynced, then renamed into place, and
rename is atomic on POSIX: a reader (or a run killed by SIGKILL) sees a whole file or none.
pyarrow's dataset discovery skips dot-prefixed names, so ``pandas.read_parquet(root)`` reads every
finished case of every run as one table and never a half-written file. Two runs never write the
same name (run id, case id and a random nonce are in it), so concurrent writers cannot collide.
"""

from __future__ import annotations

import os
import re
import secrets
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import fsync_dir, write_atomic
from .record import SCHEMA, migrate, to_table
from .spec import SpecError
from .validate import check_run_id, check_writable

__all__ = ["Store", "LocalStore", "FsStore", "is_uri", "check_writable", "compact_run", "read_results",
           "recorded_cases", "read_table", "merge_runs", "open_store", "PART_NAME", "run_dir_problem"]


class Store(Protocol):
    """Where records go. `write` must be atomic per record."""

    def write(self, record: dict[str, Any]) -> str: ...


class LocalStore:
    """Records as parquet files under a local folder."""

    def __init__(self, root: str | os.PathLike[str], run_id: str) -> None:
        self.root = Path(root)
        self.run_id = check_run_id(run_id)  # it becomes a folder name: never a path out of `root`
        problem = run_dir_problem(self.root, self.run_id)
        if problem:
            raise SpecError(problem)
        self._seq = 0

    @property
    def run_dir(self) -> Path:
        return self.root / self.run_id

    def write(self, record: dict[str, Any]) -> str:
        made = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.run_dir.is_symlink():  # made a link after the check: never write through it
            raise SpecError(run_dir_problem(self.root, self.run_id) or f"{str(self.run_dir)!r} is a link")
        self._seq += 1
        name = f"{self._seq:05d}-{record.get('case_id') or 'case'}-{secrets.token_hex(4)}.parquet"
        final = self.run_dir / name
        try:
            _write_atomic(to_table([record]), final)
        except BaseException:
            if made:  # the run's first record failed (disk full): leave no empty run folder behind
                try:
                    self.run_dir.rmdir()
                except OSError:
                    pass
            raise
        return str(final)


def run_dir_problem(root: str | os.PathLike[str], run_id: str) -> str | None:
    """Why run `run_id` cannot live under `root` (a sentence), or None. A run folder is a real
    folder inside the results root: a link there (to another run, or out of the root) would make a
    run write, and compaction take and delete, files that belong elsewhere. The root itself may be a
    link (results on a bigger disk)."""
    path = Path(root) / run_id
    if path.is_symlink():
        return (f"run folder {str(path)!r} is a link (to {os.readlink(path)!r}); a run folder must be a real "
                f"folder inside the results root: remove the link or choose another --run-id")
    if path.exists() and not path.is_dir():
        return f"run folder {str(path)!r} exists and is not a folder; choose another --run-id"
    return None


def _write_atomic(table: pa.Table, final: Path) -> None:
    write_atomic(final, lambda fh: pq.write_table(table, fh))


#: The name `LocalStore.write` gives a per-case part file; compaction touches nothing else.
PART_NAME = re.compile(r"\d{5}-[0-9A-Za-z_-]+-[0-9a-f]{8}\.parquet")


def compact_run(run_dir: str | os.PathLike[str]) -> str | None:
    """Merge a finished run's per-case files into one ``run-<id>.parquet`` beside them, then delete
    them. Readers drop duplicate (run_id, case_id) rows, so a crash between the two steps loses
    and doubles nothing. Many-run reports read 100 files instead of 50,000.

    Only files named as `LocalStore` names its parts, in a folder named as a run id, are touched:
    a parquet file of anyone else's in the same folder stays where it is."""
    run_dir = Path(run_dir)
    check_run_id(run_dir.name, "run folder")
    if run_dir.is_symlink():
        return None  # never compact (and delete) through a link: the parts are someone else's
    parts = sorted(f for f in run_dir.glob("*.parquet")
                   if PART_NAME.fullmatch(f.name) and f.is_file() and not f.is_symlink())
    if not parts:
        return None
    table = pa.concat_tables([pq.read_table(f) for f in parts], promote_options="permissive")
    final = run_dir / f"run-{run_dir.name}-{secrets.token_hex(3)}.parquet"
    _write_atomic(table, final)
    for f in parts:
        f.unlink()
    fsync_dir(run_dir)
    return str(final)


def is_uri(root: str | os.PathLike[str]) -> bool:
    return "://" in str(root)


class FsStore:
    """Records on any filesystem pyarrow can write (``s3://bucket/results``, ``gs://…``,
    ``file:///…``): same layout and names as `LocalStore`; the dot-prefixed temporary file is moved
    into place, so readers, who skip dot-prefixed names, never see a partial record."""

    def __init__(self, uri: str, run_id: str) -> None:
        from pyarrow import fs as pafs

        self.fs, self.root = pafs.FileSystem.from_uri(uri)
        self.uri = uri
        self.run_id = check_run_id(run_id)
        self._seq = 0

    @property
    def run_dir(self) -> str:
        return f"{self.root.rstrip('/')}/{self.run_id}"

    def write(self, record: dict[str, Any]) -> str:
        self.fs.create_dir(self.run_dir, recursive=True)
        self._seq += 1
        name = f"{self._seq:05d}-{record.get('case_id') or 'case'}-{secrets.token_hex(4)}.parquet"
        final, tmp = f"{self.run_dir}/{name}", f"{self.run_dir}/.tmp-{name}"
        with self.fs.open_output_stream(tmp) as fh:
            pq.write_table(to_table([record]), fh)
        self.fs.move(tmp, final)
        return final


def open_store(root: str | os.PathLike[str], run_id: str) -> Store:
    """The store for a results location: a local folder, or a URI pyarrow's filesystems know."""
    return FsStore(str(root), run_id) if is_uri(root) else LocalStore(root, run_id)


def _uri_files(uri: str) -> list[tuple[Any, str]]:
    from pyarrow import fs as pafs

    fs, root = pafs.FileSystem.from_uri(uri)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no results at {uri!r}")
    if info.type == pafs.FileType.File:
        return [(fs, root)]
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    return sorted(((fs, i.path) for i in infos if i.path.endswith(".parquet") and not any(
        part.startswith((".", "_")) for part in i.path[len(root):].split("/"))), key=lambda t: t[1])


def _files(paths: Iterable[str | os.PathLike[str]], warn: bool = False) -> list[Any]:
    """The parquet files under `paths`: regular files only (a FIFO, a device or a broken link named
    ``*.parquet`` is skipped with a warning, never opened: reading a FIFO blocks, ``/dev/zero``
    never ends)."""
    out: list[Any] = []
    for p in paths:
        if is_uri(p):
            out += _uri_files(str(p))
            continue
        p = Path(p)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.parquet")
                           if not any(part.startswith((".", "_")) for part in f.relative_to(p).parts))
        elif p.exists() or p.is_symlink():
            found = [p]
        else:
            raise FileNotFoundError(f"no results at {str(p)!r}")
        for f in found:
            if f.is_file():
                out.append(f)
            elif warn and (f.is_symlink() or f.exists()):
                warnings.warn(f"skipping {f}: not a regular file", stacklevel=4)
    return out


class _Vanished(Exception):
    """A listed file was gone when read: a writer compacted the run meanwhile."""


def _read_tables(paths: Iterable[str | os.PathLike[str]], warn: bool, vanish_ok: bool = False) -> list[pa.Table]:
    tables = []
    for f in _files(paths, warn):
        name = f[1] if isinstance(f, tuple) else f
        try:
            t = pq.read_table(f[1], filesystem=f[0]) if isinstance(f, tuple) else pq.read_table(f)
        except FileNotFoundError:
            if vanish_ok:
                continue
            raise _Vanished(str(name)) from None
        except Exception as exc:  # corrupt file, not parquet
            if isinstance(f, Path) and not f.exists() and not vanish_ok:
                raise _Vanished(str(name)) from None
            if warn:
                warnings.warn(f"skipping {name}: not a readable parquet file ({exc.__class__.__name__})", stacklevel=3)
            continue
        if "schema_version" not in t.column_names or "case_id" not in t.column_names:
            if warn:
                warnings.warn(f"skipping {name}: not a benchbed results file", stacklevel=3)
            continue
        try:
            tables.append(_upgrade(t))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError) as exc:
            if warn:
                warnings.warn(f"skipping {name}: {str(exc).splitlines()[0][:200]}", stacklevel=3)
    return tables


def read_table(*paths: str | os.PathLike[str], warn: bool = True, attempts: int = 20) -> pa.Table:
    """All records under the given folders or files as one Arrow table of the current schema.

    Files written by older schema versions gain the newer columns as nulls and pass through the
    schema history's migration (`benchbed.record.migrate`). A corrupt or foreign parquet file, or
    one whose columns have the wrong types, is skipped with a warning that names it. A run
    compacted while being read (its part files replaced by one file between listing and reading)
    is read again from a new listing, so a reader never misses records because of a writer.
    """
    for attempt in range(attempts):
        try:
            tables = _read_tables(paths or ("results",), warn)
            break
        except _Vanished as gone:
            if attempt == attempts - 1:  # not a compaction race: a file that keeps disappearing
                warnings.warn(f"skipping {gone}: it disappeared while being read {attempts} times", stacklevel=2)
                tables = _read_tables(paths or ("results",), warn, vanish_ok=True)
                break
            time.sleep(0.01 * (attempt + 1))  # the compacted file is already in place; relist
    if not tables:
        return SCHEMA.empty_table()
    table = pa.concat_tables(tables, promote_options="permissive")
    # A run compacted while being read, or a crash mid-compaction, can hold a record twice: the same
    # measurement, identical to the nanosecond. Two real measurements never share all of these.
    key = ["run_id", "case_id", "pass_index", "started_at", "n_samples", "lat_min_s", "lat_median_s", "lat_max_s"]
    keys = table.select(key).to_pandas().astype(str)
    table = table.filter(pa.array(~keys.duplicated(keep="first").to_numpy()))
    return _migrated(table)


_ID_COLUMNS = ["schema_version", "model", "case_id", "pair_id", "task", "runner", "device", "dtype", "batch_size",
               "seq_len", "new_tokens", "options", "attn_impl", "compiled", "reference", "pairing"]


def _migrated(table: pa.Table) -> pa.Table:
    ids = table.select(_ID_COLUMNS).to_pandas()
    new = migrate(ids)
    if new is ids:
        return table
    for col in ("model", "case_id", "pair_id", "reference", "pairing"):
        i = table.schema.get_field_index(col)
        values = [v if isinstance(v, str) else None for v in new[col].tolist()]  # nulls read back as NaN
        table = table.set_column(i, table.schema.field(i), pa.array(values, type=pa.string()))
    return table


def recorded_cases(results: str | os.PathLike[str], run_id: str) -> set[tuple[str, int]]:
    """(case id, pass) of every record run `run_id` already holds under `results` (what a resumed
    run skips); a `SpecError` when there is no such run."""
    from .spec import SpecError

    path = os.path.join(results, run_id)
    if not os.path.isdir(path):
        raise SpecError(f"--resume: no run {run_id!r} in {str(results)!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = read_results(path)
    return {(c, int(p) if p == p else 0) for c, p in zip(df["case_id"], df["pass_index"])}


def read_results(*paths: str | os.PathLike[str], warn: bool = True) -> "Any":
    """All records under the given folders or files as one pandas DataFrame (see `read_table`)."""
    return read_table(*paths, warn=warn).to_pandas()


def merge_runs(table: pa.Table, root: str | os.PathLike[str], run_id: str) -> tuple[str, int, int]:
    """Write `table`'s records as one run `run_id` in one compacted file under `root`; returns
    (path, records kept, records dropped). Every record is kept as it was but for its run id,
    except a second record of the same case and pass (the same shard given twice), which is
    dropped: passes and shards of one run all survive."""
    keys = table.select(["case_id", "pass_index"]).to_pandas()
    keys["pass_index"] = keys["pass_index"].fillna(0).astype("int64")
    keep = ~keys.duplicated(keep="first")
    dropped = int((~keep).sum())
    plugin = [c for c in table.column_names if SCHEMA.get_field_index(c) < 0]  # a plugin scenario's columns
    table = table.filter(pa.array(keep.to_numpy())).select([f.name for f in SCHEMA] + plugin)
    i = table.schema.get_field_index("run_id")
    table = table.set_column(i, table.schema.field(i), pa.array([run_id] * table.num_rows, type=pa.string()))
    run_dir = Path(root) / check_run_id(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / f"run-{run_id}-{secrets.token_hex(3)}.parquet"
    _write_atomic(table.replace_schema_metadata(SCHEMA.metadata), final)
    return str(final), table.num_rows, dropped


def _upgrade(table: pa.Table) -> pa.Table:
    """Bring a table of any older schema version to the current columns (missing ones as nulls)
    and types. What pandas, polars or duckdb write back from benchbed's own records is taken:
    integral floats (pandas' nullable ints with gaps), dictionary/categorical columns, large and
    view strings, lists of any width, timestamps of any unit with or without a zone (a naive one is
    UTC, as benchbed writes it). A column that cannot be coerced (text where numbers belong, a
    fraction in an integer column) raises ValueError naming the column, its type and the expected one."""
    for field in SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    extra = [c for c in table.column_names if SCHEMA.get_field_index(c) < 0]
    table = table.select([f.name for f in SCHEMA] + extra)
    columns = [_coerce(table.column(f.name), f.name, f.type) for f in SCHEMA]
    columns += [table.column(c) for c in extra]
    schema = pa.schema(list(SCHEMA) + [table.schema.field(c) for c in extra])
    return pa.Table.from_arrays(columns, schema=schema)


def _coerce(column: pa.ChunkedArray, name: str, want: pa.DataType) -> pa.ChunkedArray:
    """`column` as type `want`, or ValueError (see `_upgrade`)."""
    import pyarrow.compute as pc

    have = column.type
    if have == want:
        return column
    if pa.types.is_null(have):
        return pa.chunked_array([pa.nulls(len(column), want)])
    if pa.types.is_dictionary(have):
        column = column.cast(have.value_type)
        have = column.type
    ok = False
    if pa.types.is_integer(want):
        if pa.types.is_integer(have) or pa.types.is_boolean(have):
            ok = True
        elif pa.types.is_floating(have):
            values = column.drop_null()
            if len(values):
                finite = pc.all(pc.is_finite(values)).as_py()
                whole = finite and pc.all(pc.equal(pc.floor(values), values)).as_py()
                small = whole and pc.max(pc.abs(values)).as_py() < 2.0**63
                if not small:
                    raise ValueError(f"column {name!r} holds {have} with values that are not whole numbers, "
                                     f"expected {want}")
            return column.cast(want, safe=False)
    elif pa.types.is_floating(want):
        ok = pa.types.is_floating(have) or pa.types.is_integer(have)
    elif pa.types.is_boolean(want):
        ok = pa.types.is_boolean(have)
    elif pa.types.is_string(want) or pa.types.is_large_string(want):
        ok = pa.types.is_string(have) or pa.types.is_large_string(have) or str(have) == "string_view"
    elif pa.types.is_timestamp(want):
        if pa.types.is_timestamp(have):
            if have.tz is None:
                column = pc.assume_timezone(column, "UTC")
            return column.cast(want, safe=False)
    elif pa.types.is_list(want):
        ok = (pa.types.is_list(have) or pa.types.is_large_list(have) or pa.types.is_fixed_size_list(have)
              or str(have).startswith("list_view"))
    if not ok:
        raise ValueError(f"column {name!r} holds {have}, expected {want}")
    try:
        return column.cast(want)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ValueError(f"column {name!r} holds {have}, expected {want} ({str(exc).splitlines()[0][:120]})") from None
