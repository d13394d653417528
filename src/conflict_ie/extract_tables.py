"""The tables ``conflict-ie extract`` writes, with fixed Arrow schemas, and how they are made.

Both engines go the same way: predictions of a batch of records become one *results* row per
record (:func:`results_table`: the record's id, place, reject reason, metadata, and its
entities, relations and casualty records as list columns, without the text), and
:func:`explode` turns results into the flat tables. The local engine does both steps per shard;
the Ray engine does the first in its actors and the second after the actors finish. One code
path is why the two engines' tables are equal, and why an empty shard still has its columns.

Tables (every row keyed by the article's ``doc_id``; offsets count characters of the text):

- ``entities``: doc_id, entity_id, label, start, end, text, score, attributes (a JSON object)
- ``relations``: doc_id, head_id, head_text, tail_id, tail_text, label, score, symmetric
- ``casualties``: doc_id, text, start, end, count_min, count_max, approximate, casualty_type,
  location, perpetrator, score, then the article's metadata columns
- ``articles``: doc_id, input_file, input_row, n_entities, n_relations, n_casualties, then the
  metadata columns: one row per article written, so an article with nothing found is still seen.

Example:
    >>> ENTITIES.names[:4], RELATIONS.names[1:5]
    (['doc_id', 'entity_id', 'label', 'start'], ['head_id', 'head_text', 'tail_id', 'tail_text'])
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from conflict_ie.extract_inputs import MetaColumn
from conflict_ie.results import Prediction

TABLES = ("entities", "relations", "casualties", "articles")
_DOC = pa.field("doc_id", pa.string(), nullable=False)
_ENTITY = [
    pa.field("entity_id", pa.string()), pa.field("label", pa.string()), pa.field("start", pa.int64()),
    pa.field("end", pa.int64()), pa.field("text", pa.string()), pa.field("score", pa.float64()),
    pa.field("attributes", pa.string()),
]
_RELATION = [
    pa.field("head_id", pa.string()), pa.field("head_text", pa.string()), pa.field("tail_id", pa.string()),
    pa.field("tail_text", pa.string()), pa.field("label", pa.string()), pa.field("score", pa.float64()),
    pa.field("symmetric", pa.bool_()),
]
_CASUALTY = [
    pa.field("text", pa.string()), pa.field("start", pa.int64()), pa.field("end", pa.int64()),
    pa.field("count_min", pa.int64()), pa.field("count_max", pa.int64()), pa.field("approximate", pa.bool_()),
    pa.field("casualty_type", pa.string()), pa.field("location", pa.string()), pa.field("perpetrator", pa.string()),
    pa.field("score", pa.float64()),
]
_ARTICLE = [
    pa.field("input_file", pa.string()), pa.field("input_row", pa.int64()), pa.field("n_entities", pa.int64()),
    pa.field("n_relations", pa.int64()), pa.field("n_casualties", pa.int64()),
]
ENTITIES = pa.schema([_DOC] + _ENTITY)
RELATIONS = pa.schema([_DOC] + _RELATION)
#: Output columns a metadata field may not take (it becomes ``meta_<field>`` instead).
RESERVED = frozenset(f.name for f in [_DOC] + _CASUALTY + _ARTICLE)


def table_schema(name: str, meta: Sequence[MetaColumn] = ()) -> pa.Schema:
    """The Arrow schema of output table ``name``; casualties and articles end with the metadata columns.

    Example:
        >>> table_schema("casualties", [MetaColumn("date", "date", "string")]).names[-2:]
        ['score', 'date']
    """
    extra = [pa.field(m.column, m.arrow_type) for m in meta]
    return {"entities": lambda: ENTITIES, "relations": lambda: RELATIONS,
            "casualties": lambda: pa.schema([_DOC] + _CASUALTY + extra),
            "articles": lambda: pa.schema([_DOC] + _ARTICLE + extra)}[name]()


def results_schema(meta: Sequence[MetaColumn] = ()) -> pa.Schema:
    """One row per input record: where it was, why it was rejected (if it was), what was found.

    ``node_id`` is the Ray node whose actor predicted the row (null for the local engine).
    """
    return pa.schema([
        pa.field("doc_id", pa.string()), pa.field("file", pa.int32()), pa.field("row", pa.int64()),
        pa.field("reason", pa.string()), pa.field("detail", pa.string()),
        pa.field("entities", pa.list_(pa.struct(_ENTITY))),
        pa.field("relations", pa.list_(pa.struct(_RELATION))),
        pa.field("casualties", pa.list_(pa.struct(_CASUALTY))),
        pa.field("node_id", pa.string()),
    ] + [pa.field(m.column, m.arrow_type) for m in meta])


def results_table(records: pa.Table, predictions: Sequence[Prediction], meta: Sequence[MetaColumn] = (),
                  node_id: str | None = None) -> pa.Table:
    """Results of a record table: ``predictions`` holds one prediction per usable record
    (``reason`` null), in order; a rejected record gets empty lists.

    Example:
        >>> from conflict_ie.extract_inputs import record_schema
        >>> from conflict_ie.results import Entity
        >>> recs = pa.table({"doc_id": ["a", None], "file": [0, 0], "row": [0, 1], "reason": [None, "no_id"],
        ...                  "detail": [None, "..."], "text": ["Kyiv", None]}, schema=record_schema(()))
        >>> p = Prediction("Kyiv", (Entity("LOCATION", 0, 4, "Kyiv", 0.9, "e1"),))
        >>> results_table(recs, [p]).column("entities").to_pylist()[1]
        []
    """
    reasons = records.column("reason").to_pylist()
    if sum(r is None for r in reasons) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {sum(r is None for r in reasons)} usable records")
    preds = iter(predictions)
    entities, relations, casualties = [], [], []
    for reason in reasons:
        p = next(preds) if reason is None else Prediction("", ())
        entities.append([{"entity_id": e.id, "label": e.label, "start": e.start, "end": e.end, "text": e.text,
                          "score": e.score, "attributes": json.dumps(dict(e.attributes), ensure_ascii=False,
                                                                     sort_keys=True)} for e in p.entities])
        relations.append([{"head_id": r.head.id, "head_text": r.head.text, "tail_id": r.tail.id,
                           "tail_text": r.tail.text, "label": r.label, "score": r.score, "symmetric": r.symmetric}
                          for r in p.relations])
        casualties.append([c.to_dict() for c in p.casualties])
    schema = results_schema(meta)
    columns = {name: records.column(name) for name in ("doc_id", "file", "row", "reason", "detail")}
    columns.update(entities=pa.array(entities, schema.field("entities").type),
                   relations=pa.array(relations, schema.field("relations").type),
                   casualties=pa.array(casualties, schema.field("casualties").type),
                   node_id=pa.array([node_id] * records.num_rows, pa.string()))
    columns.update({m.column: records.column(m.column) for m in meta})
    return pa.table(columns, schema=schema)


def explode(results: pa.Table, name: str, sources: Sequence[str], meta: Sequence[MetaColumn] = ()) -> pa.Table:
    """Output table ``name`` of a results table: one row per entity, relation, casualty record or
    (``articles``) usable record. ``sources`` are the input paths, by file number.

    Example:
        >>> from conflict_ie.extract_inputs import record_schema
        >>> from conflict_ie.results import Entity
        >>> recs = pa.table({"doc_id": ["a"], "file": [0], "row": [0], "reason": [None], "detail": [None],
        ...                  "text": ["Kyiv"]}, schema=record_schema(()))
        >>> res = results_table(recs, [Prediction("Kyiv", (Entity("LOCATION", 0, 4, "Kyiv", 0.9, "e1"),))])
        >>> explode(res, "entities", ["a.jsonl"]).select(["doc_id", "label", "text"]).to_pylist()
        [{'doc_id': 'a', 'label': 'LOCATION', 'text': 'Kyiv'}]
    """
    schema = table_schema(name, meta)
    if name == "articles":
        ok = results.filter(pc.is_null(results.column("reason")))
        columns = [ok.column("doc_id"), pc.take(pa.array(list(sources), pa.string()), ok.column("file")),
                   ok.column("row")]
        columns += [pc.list_value_length(ok.column(c)).cast(pa.int64())
                    for c in ("entities", "relations", "casualties")]
        columns += [ok.column(m.column) for m in meta]
        return pa.Table.from_arrays([_chunked(c) for c in columns], schema=schema)
    lists = _chunked(results.column(name)).combine_chunks()
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    columns = [pc.take(results.column("doc_id"), parents)]
    columns += [flat.field(f.name) for f in schema if f.name in flat.type.names and f.name != "doc_id"]
    if name == "casualties":
        columns += [pc.take(results.column(m.column), parents) for m in meta]
    return pa.Table.from_arrays([_chunked(c) for c in columns], schema=schema)


def _chunked(array) -> pa.ChunkedArray:
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def reject_lines(results: pa.Table, sources: Sequence[str]) -> list[str]:
    """One JSON line per rejected record: ``source``, ``row`` (0-based), ``line`` (JSONL: 1-based),
    ``id`` (when it had one), ``reason`` and ``detail``.

    Example:
        >>> from conflict_ie.extract_inputs import record_schema
        >>> recs = pa.table({"doc_id": [None], "file": [0], "row": [4], "reason": ["invalid_json"],
        ...                  "detail": ["not JSON"], "text": [None]}, schema=record_schema(()))
        >>> reject_lines(results_table(recs, []), ["a.jsonl"])
        ['{"source": "a.jsonl", "row": 4, "line": 5, "id": null, "reason": "invalid_json", "detail": "not JSON"}']
    """
    bad = results.filter(pc.is_valid(results.column("reason"))).select(["file", "row", "doc_id", "reason", "detail"])
    out = []
    for r in bad.to_pylist():
        source = sources[r["file"]]
        line = {"source": source, "row": r["row"]}
        if not source.lower().endswith(".parquet"):
            line["line"] = r["row"] + 1
        line.update(id=r["doc_id"], reason=r["reason"], detail=r["detail"])
        out.append(json.dumps(line, ensure_ascii=False))
    return out


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` whole or not at all: a hidden temporary file beside it (pyarrow,
    pandas, polars and DuckDB globs skip it), flushed to disk, then renamed over ``path``."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp"
    with open(tmp, "wb") as f:
        pq.write_table(table, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text_atomic(text: str, path: Path) -> None:
    """Like :func:`write_parquet_atomic`, for a text file (the manifest, the rejects)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
