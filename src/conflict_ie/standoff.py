"""Stand-off annotations: spans and relations kept apart from a text the repository may not hold.

The re3d documents are under licences that forbid copying them here, so their conflict-schema
annotation is stored as offsets into the text plus hashes: per document its id, the SHA-256 of
its text, and per span the SHA-1 of its surface string (never the string itself). Joining them
with a copy of the text checks both, so an edited or different copy is an error naming the
document, never spans that silently point at the wrong words.

A stand-off folder holds ``manifest.json`` (format, schema, where the texts are by default) and one
``<part>/<document id>.json`` per document::

    {"id": "…", "part": "centcom", "text_sha256": "…", "annotator": "A",
     "spans": [{"id": "e1", "start": 10, "end": 15, "label": "ARMED_GROUP", "surface_sha1": "…",
                "attributes": {}}],
     "relations": [{"head": "e1", "tail": "e2", "label": "FIGHTS"}]}

Example:
    >>> surface_hash("ISIL")
    '35eba853a0f8'
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from conflict_ie.documents import Document, Provenance, Relation, Span, check_relation, check_span
from conflict_ie.errors import InputError
from conflict_ie.schema import LabelSchema

FORMAT = "conflict-ie-standoff/1"
MANIFEST = "manifest.json"


def text_hash(text: str) -> str:
    """SHA-256 of a document's text (UTF-8), as stored in its stand-off file.

    Example:
        >>> text_hash("abc")[:12]
        'ba7816bf8f01'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def surface_hash(surface: str) -> str:
    """The first 12 hex digits of the SHA-1 of a span's surface text: enough to catch a moved
    offset, too little to be the text.

    Example:
        >>> len(surface_hash("Daesh"))
        12
    """
    return hashlib.sha1(surface.encode("utf-8")).hexdigest()[:12]


def read_re3d_texts(root: str | Path) -> dict[str, dict[str, Any]]:
    """The documents of a re3d copy (``root/<part>/documents.json``, one JSON object per line),
    by id: ``{"text", "title", "part", "sourceName", "sourceUrl"}``.

    Example:
        >>> texts = read_re3d_texts("../shared/data/re3d")  # doctest: +SKIP
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"the re3d texts are not at {root}: give the folder of a re3d copy "
                         "(its parts hold documents.json)", source=str(root), reason="missing_source")
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(root.glob("*/documents.json")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out[str(row["_id"])] = {"text": row["text"], "title": row.get("title", ""),
                                        "part": path.parent.name, "sourceName": row.get("sourceName", ""),
                                        "sourceUrl": row.get("sourceUrl", "")}
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(f"line {n}: not a re3d document ({exc})", source=str(path)) from exc
    if not out:
        raise InputError(f"no re3d documents under {root} (expected <part>/documents.json)",
                         source=str(root), reason="missing_source")
    return out


def standoff_record(doc: Document, part: str, annotator: str = "") -> dict[str, Any]:
    """The stand-off form of an annotated document: offsets and hashes, no text.

    Example:
        >>> d = Document("x", "ISIL fighters", (Span("e1", 0, 4, "ARMED_GROUP"),))
        >>> standoff_record(d, "p")["spans"][0]["surface_sha1"] == surface_hash("ISIL")
        True
    """
    return {
        "id": doc.id,
        "part": part,
        "text_sha256": text_hash(doc.text),
        "annotator": annotator,
        "spans": [{"id": s.id, "start": s.start, "end": s.end, "label": s.label,
                   "surface_sha1": surface_hash(doc.span_text(s)), "attributes": dict(s.attributes)}
                  for s in sorted(doc.spans, key=lambda s: (s.start, s.end, s.label))],
        "relations": [{"head": r.head, "tail": r.tail, "label": r.label} for r in doc.relations],
    }


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """A stand-off folder's manifest, checked for its format."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(f"not a stand-off folder: it has no {MANIFEST}", source=str(folder))
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise InputError(f"format {manifest.get('format')!r}, expected {FORMAT!r}", source=str(path), field="format")
    return manifest


def is_standoff_folder(path: str | Path) -> bool:
    """True for a folder with a stand-off manifest (what ``inputs:`` entries may also name)."""
    return (Path(path) / MANIFEST).is_file()


def _join(record: Mapping[str, Any], where: str, texts: Mapping[str, Mapping[str, Any]],
          schema: LabelSchema | None) -> Document:
    doc_id = str(record.get("id", ""))
    source = texts.get(doc_id)
    if source is None:
        raise InputError(f"document {doc_id!r} is not in the source texts (a different or incomplete copy "
                         "of the corpus?)", source=where, reason="missing_document", field="id")
    text = source["text"]
    if text_hash(text) != record.get("text_sha256"):
        raise InputError(f"the source text of document {doc_id!r} differs from the one annotated (its SHA-256 "
                         "does not match), so its offsets cannot be trusted", source=where,
                         reason="changed_text", field="text_sha256")
    spans = []
    for n, row in enumerate(record.get("spans") or ()):
        try:
            span = Span(str(row["id"]), int(row["start"]), int(row["end"]), str(row["label"]),
                        dict(row.get("attributes") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"document {doc_id!r}: a span lacks or mistypes a value ({exc!r})",
                             source=where, field=f"spans[{n}]") from exc
        problems = list(check_span(text, span, schema))
        if not problems and surface_hash(text[span.start:span.end]) != row.get("surface_sha1"):
            problems = [f"[{span.start}, {span.end}) does not cover the text it was annotated on "
                        "(surface hash differs)"]
        if problems:
            message = getattr(problems[0], "message", problems[0])
            raise InputError(f"document {doc_id!r}, span {span.id}: {message}", source=where,
                             reason="bad_span", field=f"spans[{n}]")
        spans.append(span)
    by_id = {s.id: s for s in spans}
    if len(by_id) != len(spans):
        raise InputError(f"document {doc_id!r}: two spans share an id", source=where, field="spans")
    relations = []
    for n, row in enumerate(record.get("relations") or ()):
        rel = Relation(str(row.get("head")), str(row.get("tail")), str(row.get("label")))
        problems = list(check_relation(rel, by_id, schema))
        if problems:
            raise InputError(f"document {doc_id!r}: {problems[0].message}", source=where, reason="bad_relation",
                             field=f"relations[{n}]")
        relations.append(rel)
    fields = {"data": {"re3d_id": doc_id, "title": source.get("title", "")},
              "meta": {"origin": f"re3d/{source.get('part', record.get('part', ''))}",
                       "source_url": source.get("sourceUrl", "")}}
    return Document(doc_id, text, tuple(spans), tuple(relations),
                    Provenance(source=where, annotator=record.get("annotator") or None, fields=fields))


def read_standoff_file(path: str | Path, texts: Mapping[str, Mapping[str, Any]],
                       schema: LabelSchema | None = None) -> Document:
    """One stand-off file joined with its text from ``texts`` (``read_re3d_texts``), checked.

    Example:
        >>> doc = read_standoff_file("a/centcom/x.json", read_re3d_texts("re3d"))  # doctest: +SKIP
    """
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc})", source=str(path)) from exc
    return _join(record, str(path), texts, schema)


def read_standoff(folder: str | Path, text_root: str | Path | None = None,
                  schema: LabelSchema | None = None) -> list[Document]:
    """Documents from a stand-off folder joined with their texts (``text_root``, else the manifest's
    ``text_root``, relative to the working directory).

    Every document's text hash and every span's surface hash are checked; a missing or changed
    source is an ``InputError`` naming the document and its file.

    Example:
        >>> docs = read_standoff("annotations/re3d-conflict")  # doctest: +SKIP
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    root = text_root or manifest.get("text_root")
    if not root:
        raise InputError("no text root given and none in the manifest", source=str(folder), field="text_root")
    texts = read_re3d_texts(root)
    docs = [read_standoff_file(path, texts, schema) for path in sorted(folder.glob("*/*.json"))]
    if not docs:
        raise InputError("no stand-off documents (<part>/<id>.json)", source=str(folder), reason="empty")
    return docs


def standoff_tasks(folders: Sequence[str | Path], text_root: str | Path | None = None,
                   schema: LabelSchema | None = None, *, shared_only: bool = False) -> list[dict[str, Any]]:
    """A Label Studio full JSON export of stand-off folders joined with their texts: one task per
    document, one annotation per folder that has the document (``completed_by`` names the file's
    annotator), so that two independent annotations of a document feed ``conflict-ie agreement``.
    ``shared_only`` keeps the documents every folder has.

    Example:
        >>> tasks = standoff_tasks(["annotations/re3d-conflict"])  # doctest: +SKIP
    """
    from conflict_ie.labelstudio_writer import document_results, documents_to_tasks

    symmetric = {r.label for r in schema.relations if r.symmetric} if schema is not None else set()
    by_folder = [{d.id: d for d in read_standoff(f, text_root, schema)} for f in folders]
    ids = sorted(set.intersection(*map(set, by_folder)) if shared_only else set().union(*by_folder))
    tasks = []
    for n, doc_id in enumerate(ids, 1):
        docs = [(k, part[doc_id]) for k, part in enumerate(by_folder) if doc_id in part]
        k0, first = docs[0]
        (task,) = documents_to_tasks([first], first_id=n, annotator={
            "id": k0 + 1, "email": first.provenance.annotator or f"annotator-{k0 + 1}"})
        for k, doc in docs[1:]:
            extra = dict(task["annotations"][0])
            extra.update(id=n * 100 + k, completed_by={"id": k + 1, "email": doc.provenance.annotator or
                                                       f"annotator-{k + 1}"},
                         result=document_results(doc, symmetric=symmetric), ground_truth=False)
            task["annotations"].append(extra)
        task["annotations"][0]["result"] = document_results(first, symmetric=symmetric)
        task["total_annotations"] = len(task["annotations"])
        tasks.append(task)
    return tasks
