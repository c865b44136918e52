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
import secrets
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from .record import SCHEMA, to_table

__all__ = ["Store", "LocalStore", "FsStore", "is_uri", "check_writable", "compact_run", "read_results", "open_store"]


class Store(Protocol):
    """Where records go. `write` must be atomic per record."""

    def write(self, record: dict[str, Any]) -> str: ...


def check_writable(root: str | os.PathLike[str]) -> str | None:
    """Why `root` cannot hold results (a sentence), or None when it can. Creates nothing."""
    if is_uri(root):
        return None  # a remote store is checked by its first write
    path = Path(root).absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return f"results folder {str(root)!r} has no existing parent"
        probe = probe.parent
    if not probe.is_dir():
        return f"results folder {str(root)!r} cannot be created: {str(probe)!r} is not a folder"
    try:  # os.access says yes to root everywhere; a real probe that leaves nothing behind does not lie
        os.rmdir(tempfile.mkdtemp(prefix=".benchbed-probe-", dir=probe))
    except OSError as exc:
        return f"results folder {str(root)!r} is not writable ({exc.strerror or exc} in {str(probe)!r})"
    return None


class LocalStore:
    """Records as parquet files under a local folder."""

    def __init__(self, root: str | os.PathLike[str], run_id: str) -> None:
        self.root = Path(root)
        self.run_id = run_id
        self._seq = 0

    @property
    def run_dir(self) -> Path:
        return self.root / self.run_id

    def write(self, record: dict[str, Any]) -> str:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"{self._seq:05d}-{record.get('case_id') or 'case'}-{secrets.token_hex(4)}.parquet"
        final = self.run_dir / name
        _write_atomic(to_table([record]), final)
        return str(final)


def _write_atomic(table: pa.Table, final: Path) -> None:
    tmp = final.with_name(f".tmp-{secrets.token_hex(4)}-{final.name}")
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def compact_run(run_dir: str | os.PathLike[str]) -> str | None:
    """Merge a finished run's per-case files into one ``run-<id>.parquet`` beside them, then delete
    them. Readers drop duplicate (run_id, case_id) rows, so a crash between the two steps loses
    and doubles nothing. Many-run reports read 100 files instead of 50,000."""
    run_dir = Path(run_dir)
    parts = sorted(f for f in run_dir.glob("*.parquet") if not f.name.startswith((".", "run-")))
    if not parts:
        return None
    table = pa.concat_tables([pq.read_table(f) for f in parts], promote_options="permissive")
    final = run_dir / f"run-{run_dir.name}-{secrets.token_hex(3)}.parquet"
    _write_atomic(table, final)
    for f in parts:
        f.unlink()
    _fsync_dir(run_dir)
    return str(final)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
        self.run_id = run_id
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


def _files(paths: Iterable[str | os.PathLike[str]]) -> list[Any]:
    out: list[Any] = []
    for p in paths:
        if is_uri(p):
            out += _uri_files(str(p))
            continue
        p = Path(p)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*.parquet") if not any(part.startswith((".", "_")) for part in f.relative_to(p).parts))
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"no results at {str(p)!r}")
    return out


def read_results(*paths: str | os.PathLike[str], warn: bool = True) -> "Any":
    """All records under the given folders or files as one pandas DataFrame.

    Files written by older schema versions gain the newer columns as nulls. A corrupt or foreign
    parquet file is skipped with a warning that names it.
    """

    tables = []
    for f in _files(paths or ("results",)):
        try:
            t = pq.read_table(f[1], filesystem=f[0]) if isinstance(f, tuple) else pq.read_table(f)
        except Exception as exc:  # corrupt file, not parquet
            if warn:
                f = f[1] if isinstance(f, tuple) else f
                warnings.warn(f"skipping {f}: not a readable parquet file ({exc.__class__.__name__})", stacklevel=2)
            continue
        if "schema_version" not in t.column_names or "case_id" not in t.column_names:
            if warn:
                f = f[1] if isinstance(f, tuple) else f
                warnings.warn(f"skipping {f}: not a benchbed results file", stacklevel=2)
            continue
        tables.append(_upgrade(t))
    if not tables:
        return SCHEMA.empty_table().to_pandas()
    df = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    # A run compacted while being read, or a crash mid-compaction, can hold a record twice: the same
    # measurement, identical to the nanosecond. Two real measurements never share all of these.
    key = ["run_id", "case_id", "started_at", "n_samples", "lat_min_s", "lat_median_s", "lat_max_s"]
    return df.loc[~df[key].astype(str).duplicated(keep="first")].reset_index(drop=True)


def _upgrade(table: pa.Table) -> pa.Table:
    """Bring a table of any older schema version to the current columns (missing ones as nulls)."""
    for field in SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    extra = [c for c in table.column_names if SCHEMA.get_field_index(c) < 0]
    return table.select([f.name for f in SCHEMA] + extra)


