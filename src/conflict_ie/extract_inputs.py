"""Archive inputs for ``conflict-ie extract``: finding files, one scan over them, reading shards.

An input is a JSONL file (one ``{"id": ..., "text": ..., ...}`` object a line), a Parquet file,
a folder (its ``.jsonl``, ``.ndjson`` and ``.parquet`` files, recursively, in name order; names
starting with ``.`` or ``_`` skipped, as pyarrow does) or a glob. The files are read twice:

1. :func:`scan` reads every record once before the model loads. It counts rows (the progress
   bar's total), collects the metadata fields (every field but the text and the id), cuts each
   file into shards of ``shard_size`` rows (with the byte offset of each JSONL shard, so a
   resumed run or a Ray task seeks straight to it) and finds duplicate ids. Ids go through an
   on-disk SQLite table, so memory stays flat however many millions of ids there are.
2. :func:`read_shard` reads one shard's rows back, checked the same way, as Arrow tables of
   :func:`record_schema`. A row that cannot be used keeps its place with a ``reason``
   (:data:`REASONS`) and a ``detail``: the engines route it to the rejects file.

A row is the record's 0-based position in its file: for JSONL the line number minus one (blank
lines are no records, but keep their numbers), for Parquet the row number.
"""

from __future__ import annotations

import glob
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from conflict_ie.errors import InputError

#: Why a record was rejected (the ``reason`` of a rejects line).
REASONS = ("invalid_json", "not_utf8", "no_id", "no_text", "duplicate_id")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
#: Rows per Arrow table that :func:`read_shard` yields: small enough that a shard of long
#: articles never sits in memory whole.
READ_BATCH = 256
#: Columns every record table has before the metadata columns.
RECORD_FIELDS = [
    pa.field("doc_id", pa.string()),
    pa.field("file", pa.int32()),
    pa.field("row", pa.int64()),
    pa.field("reason", pa.string()),
    pa.field("detail", pa.string()),
    pa.field("text", pa.string()),
]


@dataclass(frozen=True)
class InputFile:
    """One input file as it was when the job started (size and mtime tell a changed file)."""

    path: str
    format: str
    size: int
    mtime_ns: int

    def stat_key(self) -> list:
        return [self.path, self.format, self.size, self.mtime_ns]


@dataclass(frozen=True)
class Shard:
    """Rows ``[start, stop)`` of input file number ``file``; ``offset`` is the byte where a JSONL
    shard's first line starts (0 for Parquet)."""

    index: int
    file: int
    start: int
    stop: int
    offset: int = 0


@dataclass(frozen=True)
class MetaColumn:
    """A metadata field of the input and the column it becomes (renamed ``meta_<field>`` where
    it would clash with an output column) with its Arrow type (a string for JSONL input)."""

    field: str
    column: str
    type: str

    @property
    def arrow_type(self) -> pa.DataType:
        return type_from_string(self.type)


@dataclass(frozen=True)
class Scan:
    """What :func:`scan` found: files, shards, metadata columns, row counts and duplicates.

    ``rows`` counts records (blank JSONL lines are none). ``duplicates`` maps ``"FILE:ROW"`` of every later occurrence of an id to where it was
    first seen, so both engines reject the same records without talking to each other.
    """

    files: tuple[InputFile, ...]
    shards: tuple[Shard, ...]
    meta: tuple[MetaColumn, ...]
    rows: int
    duplicates: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"files": [asdict(f) for f in self.files], "shards": [asdict(s) for s in self.shards],
                "meta": [asdict(m) for m in self.meta], "rows": self.rows, "duplicates": self.duplicates}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Scan":
        return cls(tuple(InputFile(**f) for f in d["files"]), tuple(Shard(**s) for s in d["shards"]),
                   tuple(MetaColumn(**m) for m in d["meta"]), int(d["rows"]), dict(d["duplicates"]))


def type_from_string(name: str) -> pa.DataType:
    """The Arrow type of a name that :func:`type_to_string` wrote (the manifest keeps types as text).

    Example:
        >>> t = pa.timestamp("us", tz="UTC")
        >>> type_from_string("string"), type_from_string(type_to_string(t)) == t
        (DataType(string), True)
    """
    if name in _TYPES:
        return _TYPES[name]
    # pyarrow has no parser for its own type names; a schema serialised to IPC is the exact way back.
    return pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(name.removeprefix("arrow:")))).field(0).type


_TYPES = {"string": pa.string(), "large_string": pa.large_string(), "int64": pa.int64(), "int32": pa.int32(),
          "double": pa.float64(), "bool": pa.bool_(), "date32[day]": pa.date32()}


def type_to_string(t: pa.DataType) -> str:
    """A common type by its name; any other (a timestamp with a time zone, a struct) as
    ``arrow:`` and the hex of a one-field Arrow schema.

    Example:
        >>> type_to_string(pa.int64()), type_to_string(pa.list_(pa.string()))[:6]
        ('int64', 'arrow:')
    """
    if _TYPES.get(str(t)) == t:
        return str(t)
    return "arrow:" + pa.schema([pa.field("x", t)]).serialize().to_pybytes().hex()


# ------------------------------------------------------------------ finding files
def expand_inputs(values: list[str]) -> list[InputFile]:
    """The input files of ``--input`` values (files, folders, globs), in order, each once.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("b.jsonl", "a.parquet", "_skip.jsonl", "notes.txt"):
        ...     _ = (d / name).write_text("")
        >>> [(pathlib.Path(f.path).name, f.format) for f in expand_inputs([str(d)])]
        [('a.parquet', 'parquet'), ('b.jsonl', 'jsonl')]
    """
    paths: list[Path] = []
    for value in values:
        path = Path(value)
        if any(c in value for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(value, recursive=True) if Path(p).is_file())
            found = [p for p in found if _format(p)]
            if not found:
                raise InputError("the pattern matches no .jsonl or .parquet file", source=value)
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _format(p)
                           and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
            if not found:
                raise InputError("the folder holds no .jsonl or .parquet file", source=value)
        elif path.is_file():
            if not _format(path):
                raise InputError("not a .jsonl, .ndjson or .parquet file", source=value)
            found = [path]
        else:
            raise InputError("no such file or folder", source=value)
        paths += found
    out, seen = [], set()
    for p in paths:
        resolved = str(p.resolve())
        if resolved not in seen:  # a file named twice (a folder and a glob over it) is read once
            seen.add(resolved)
            st = os.stat(resolved)
            out.append(InputFile(resolved, _format(p), st.st_size, st.st_mtime_ns))
    return out


def _format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


# ------------------------------------------------------------------ checking one record
def check_record(obj: Any, id_field: str, text_field: str) -> tuple[str | None, str | None, str | None, str | None]:
    """``(doc_id, text, reason, detail)`` of one parsed record; ``reason`` is None when it is usable.

    Ids are strings or whole numbers (a number becomes its decimal text, so ``7`` and ``"7"`` are
    the same id). Texts are non-blank strings without lone surrogates.

    Example:
        >>> check_record({"id": 7, "text": "Kyiv was hit."}, "id", "text")
        ('7', 'Kyiv was hit.', None, None)
        >>> check_record({"id": "a", "text": "  "}, "id", "text")[2:]
        ('no_text', 'the text is blank')
    """
    if not isinstance(obj, dict):
        return None, None, "invalid_json", f"a JSON {_kind(obj)}, not an object"
    raw_id = obj.get(id_field)
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or raw_id == "":
        what = "missing" if raw_id is None else ("empty" if raw_id == "" else f"a {_kind(raw_id)}")
        return None, None, "no_id", f"the {id_field!r} field is {what}; ids are strings or whole numbers"
    doc_id = str(raw_id)
    text = obj.get(text_field)
    if isinstance(text, (bytes, bytearray)):  # a Parquet binary column
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            return doc_id, None, "not_utf8", f"the text is not UTF-8 ({exc.reason} at byte {exc.start})"
    if text is None:
        return doc_id, None, "no_text", f"no {text_field!r} field"
    if not isinstance(text, str):
        return doc_id, None, "no_text", f"the {text_field!r} field is a {_kind(text)}, not a string"
    if not text.strip():
        return doc_id, None, "no_text", "the text is blank"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return doc_id, None, "not_utf8", f"the text holds a lone surrogate at character {exc.start}"
    return doc_id, text, None, None


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def meta_string(value: Any) -> str | None:
    """A metadata value of a string column: a string as itself, anything else as its JSON text.

    Example:
        >>> meta_string("2024-05-01"), meta_string(3), meta_string({"a": [1]}), meta_string(None)
        ('2024-05-01', '3', '{"a": [1]}', None)
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (date, datetime, Decimal)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


# ------------------------------------------------------------------ raw rows
def _jsonl_rows(path: str, start: int = 0, stop: int | None = None, offset: int = 0
                ) -> Iterator[tuple[int, int, Any, str | None, str | None]]:
    """``(row, byte offset, object, reason, detail)`` for rows ``[start, stop)`` of a JSONL file;
    the file is opened at ``offset`` (the byte where row ``start`` begins)."""
    with open(path, "rb") as f:
        f.seek(offset)
        row = start
        pos = offset
        for line in f:
            if stop is not None and row >= stop:
                return
            here, pos = pos, pos + len(line)
            if row == 0 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]  # a UTF-8 byte-order mark, as Windows editors write
            if line.strip():
                try:
                    decoded = line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    # Decoded with replacement characters only so that the rejects line can name the id.
                    try:
                        obj = json.loads(line.decode("utf-8", errors="replace"))
                    except json.JSONDecodeError:
                        obj = None
                    yield row, here, obj, "not_utf8", f"the line is not UTF-8 ({exc.reason} at byte {exc.start})"
                else:
                    try:
                        yield row, here, json.loads(decoded), None, None
                    except json.JSONDecodeError as exc:
                        yield row, here, None, "invalid_json", f"not JSON ({exc.msg} at column {exc.colno})"
            row += 1


def _parquet_file(path: str):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read as Parquet: {exc}", source=path) from None


def _parquet_rows(path: str, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, dict]]:
    """``(row, record)`` for rows ``[start, stop)`` of a Parquet file, reading only the row groups
    that hold them, a bounded batch at a time."""
    pf = _parquet_file(path)
    meta = pf.metadata
    stop = meta.num_rows if stop is None else min(stop, meta.num_rows)
    first = 0
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if first + n > start and first < stop:
            row = first
            for batch in pf.iter_batches(batch_size=READ_BATCH, row_groups=[g]):
                for rec in batch.to_pylist():
                    if start <= row < stop:
                        yield row, rec
                    row += 1
        first += n


def parquet_columns(path: str) -> pa.Schema:
    return _parquet_file(path).schema_arrow


# ------------------------------------------------------------------ the scan
def scan(files: list[InputFile], *, id_field: str = "id", text_field: str = "text", shard_size: int = 5000,
         output_columns: frozenset[str] = frozenset(), workdir: str | None = None, progress: bool = False) -> Scan:
    """Read every record once: shards, metadata columns, row count, duplicate ids. Raises
    :class:`InputError` for a file that cannot be read at all (a corrupt Parquet file, a Parquet
    file without the text or id column), before any model is loaded.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); f = d / "a.jsonl"
        >>> _ = f.write_text('{"id": 1, "text": "Kyiv", "date": "2024"}\\n{"id": 1, "text": "Lviv"}\\n')
        >>> s = scan(expand_inputs([str(f)]), shard_size=1)
        >>> s.rows, len(s.shards), [m.column for m in s.meta], s.duplicates
        (2, 2, ['date'], {'0:1': 'a.jsonl line 1'})
    """
    shards: list[Shard] = []
    fields: dict[str, set[str]] = {}  # metadata field -> the Arrow types it comes with
    rows = 0
    duplicates: dict[str, str] = {}
    done_bytes = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(f.size for f in files), unit="B", unit_scale=True, desc="scan")
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".scan-") as tmp:
        db = sqlite3.connect(os.path.join(tmp, "ids.sqlite"))
        # A WITHOUT ROWID table is one B-tree keyed by the id: the lookup and the insert are one step.
        db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY, at TEXT) WITHOUT ROWID")
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")

        def seen(doc_id: str, where: str, key: str) -> None:
            cur = db.execute("INSERT OR IGNORE INTO ids VALUES (?, ?)", (doc_id, where))
            if cur.rowcount == 0:
                duplicates[key] = db.execute("SELECT at FROM ids WHERE id = ?", (doc_id,)).fetchone()[0]

        for k, f in enumerate(files):
            name = Path(f.path).name
            n = records = 0
            if f.format == "jsonl":
                for row, offset, obj, reason, _ in _jsonl_rows(f.path):
                    if not shards or shards[-1].file != k or row >= shards[-1].stop:
                        # A shard starts at its first non-blank line, so its offset and row agree.
                        shards.append(Shard(len(shards), k, row, (row // shard_size + 1) * shard_size, offset))
                    n, records = row + 1, records + 1
                    if reason is None:
                        if isinstance(obj, dict):
                            for key in obj:
                                if key not in (id_field, text_field):
                                    fields.setdefault(key, set()).add("string")
                        doc_id, _, reason, _ = check_record(obj, id_field, text_field)
                        if reason is None:
                            seen(doc_id, f"{name} line {row + 1}", f"{k}:{row}")
                    if bar is not None and row % 1024 == 0:
                        bar.n = done_bytes + offset
                        bar.refresh()
                if shards and shards[-1].file == k and shards[-1].stop > n:
                    last = shards[-1]
                    shards[-1] = Shard(last.index, k, last.start, n, last.offset)
            else:
                pf = _parquet_file(f.path)
                schema = pf.schema_arrow
                for col in (id_field, text_field):
                    if col not in schema.names:
                        raise InputError(f"has no {col!r} column (its columns: {', '.join(schema.names)}); "
                                         f"name the right one with --{'id' if col == id_field else 'text'}-field",
                                         source=f.path)
                for c in schema:
                    if c.name not in (id_field, text_field):
                        fields.setdefault(c.name, set()).add(type_to_string(c.type))
                n = records = pf.metadata.num_rows
                shards += [Shard(len(shards) + i, k, start, min(start + shard_size, n))
                           for i, start in enumerate(range(0, n, shard_size))]
                row = 0
                for batch in pf.iter_batches(batch_size=4096, columns=[id_field, text_field]):
                    for rec in batch.to_pylist():
                        doc_id, _, reason, _ = check_record(rec, id_field, text_field)
                        if reason is None:
                            seen(doc_id, f"{name} row {row}", f"{k}:{row}")
                        row += 1
            rows += records
            done_bytes += f.size
            if bar is not None:
                bar.n = done_bytes
                bar.refresh()
        db.close()
    if bar is not None:
        bar.close()
    return Scan(tuple(files), tuple(shards), tuple(_meta_columns(fields, output_columns)), rows, duplicates)


def _meta_columns(fields: dict[str, set[str]], taken: frozenset[str]) -> list[MetaColumn]:
    out = []
    used = set(taken)
    for name, types in fields.items():
        # One type per column across files: a field in several Parquet files with different types,
        # or in both JSONL and Parquet, becomes a string column (each value as meta_string writes it).
        type_name = types.pop() if len(types) == 1 else "string"
        column = name
        while column in used:
            column = f"meta_{column}"
        used.add(column)
        out.append(MetaColumn(name, column, type_name))
    return out


# ------------------------------------------------------------------ reading a shard back
def record_schema(meta: tuple[MetaColumn, ...]) -> pa.Schema:
    """The columns of a record table: :data:`RECORD_FIELDS`, then one per metadata column.

    Example:
        >>> record_schema((MetaColumn("date", "date", "string"),)).names
        ['doc_id', 'file', 'row', 'reason', 'detail', 'text', 'date']
    """
    return pa.schema(RECORD_FIELDS + [pa.field(m.column, m.arrow_type) for m in meta])


def read_shard(scan_: Scan, shard: Shard, *, id_field: str = "id", text_field: str = "text") -> Iterator[pa.Table]:
    """The rows of one shard, in order, as record tables of at most :data:`READ_BATCH` rows.

    Every row of the shard is there: a usable record with its text, any other with its
    ``reason`` and ``detail`` (and no text). Blank JSONL lines are no rows.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); f = d / "a.jsonl"
        >>> _ = f.write_text('{"id": 1, "text": "Kyiv"}\\n{oops\\n')
        >>> s = scan(expand_inputs([str(f)]))
        >>> next(read_shard(s, s.shards[0])).select(["doc_id", "row", "reason"]).to_pylist()
        [{'doc_id': '1', 'row': 0, 'reason': None}, {'doc_id': None, 'row': 1, 'reason': 'invalid_json'}]
    """
    f = scan_.files[shard.file]
    schema = record_schema(scan_.meta)
    if f.format == "jsonl":
        rows = ((row, obj, reason, detail) for row, _, obj, reason, detail
                in _jsonl_rows(f.path, shard.start, shard.stop, shard.offset))
    else:
        rows = ((row, rec, None, None) for row, rec in _parquet_rows(f.path, shard.start, shard.stop))
    cols: dict[str, list] = {name: [] for name in schema.names}
    for row, obj, reason, detail in rows:
        doc_id = text = None
        if reason is None:
            doc_id, text, reason, detail = check_record(obj, id_field, text_field)
        if reason is None and (first := scan_.duplicates.get(f"{shard.file}:{row}")) is not None:
            reason, detail, text = "duplicate_id", f"the id was first seen at {first}", None
        if reason is not None and doc_id is None and isinstance(obj, dict):
            raw = obj.get(id_field)
            doc_id = meta_string(raw) if raw is not None else None
        for name, value in (("doc_id", doc_id), ("file", shard.file), ("row", row), ("reason", reason),
                            ("detail", detail), ("text", text)):
            cols[name].append(value)
        for m in scan_.meta:
            value = obj.get(m.field) if isinstance(obj, dict) else None
            cols[m.column].append(meta_string(value) if m.type == "string" else value)
        if len(cols["row"]) >= READ_BATCH:
            yield pa.table(cols, schema=schema)
            cols = {name: [] for name in schema.names}
    if cols["row"]:
        yield pa.table(cols, schema=schema)
