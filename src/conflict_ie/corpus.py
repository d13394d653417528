"""Documents -> a ``datasets.DatasetDict`` with document-level splits, and back.

One row per document: ``id``, ``text``, ``spans`` (``label`` a ``ClassLabel`` of
the schema's entity labels, one string field per schema attribute),
``relations`` (``label`` a ``ClassLabel`` of the relation labels) and ``meta``
(provenance as a JSON string). Tokenized windows are derived from these rows
(:mod:`conflict_ie.alignment`), never stored instead of them.

Splits are made by document, never by sentence, so that no article leaks
between train and test. The same input and seed give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import datasets

from conflict_ie.documents import Document, Provenance, Relation, Span
from conflict_ie.config import SplitSpec
from conflict_ie.errors import InputError
from conflict_ie.schema import LabelSchema

SPLITS = ("train", "validation", "test")


def features(schema: LabelSchema) -> datasets.Features:
    """The corpus features for ``schema``.

    Example:
        >>> features(LabelSchema.load("conflict"))["spans"].feature["label"].names[:2]
        ['ARMED_GROUP', 'OFFICIAL']
    """
    span = {
        "id": datasets.Value("string"),
        "start": datasets.Value("int32"),
        "end": datasets.Value("int32"),
        "label": datasets.ClassLabel(names=list(schema.entity_labels)),
        "attributes": {a.name: datasets.Value("string") for a in schema.attributes}
        or {"_none": datasets.Value("string")},
    }
    relation = {
        "head": datasets.Value("string"),
        "tail": datasets.Value("string"),
        "label": datasets.ClassLabel(names=list(schema.relation_labels) or ["_none"]),
    }
    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "spans": datasets.List(span),
            "relations": datasets.List(relation),
            "meta": datasets.Value("string"),
        }
    )


def to_row(doc: Document, schema: LabelSchema) -> dict[str, Any]:
    attr_names = [a.name for a in schema.attributes] or ["_none"]
    return {
        "id": doc.id,
        "text": doc.text,
        "spans": [
            {
                "id": s.id,
                "start": s.start,
                "end": s.end,
                "label": s.label,
                "attributes": {n: s.attributes.get(n) for n in attr_names},
            }
            for s in doc.spans
        ],
        "relations": [{"head": r.head, "tail": r.tail, "label": r.label} for r in doc.relations],
        "meta": json.dumps(doc.meta(), sort_keys=True, ensure_ascii=False, default=str),
    }


def from_row(row: Mapping[str, Any], schema: LabelSchema) -> Document:
    """A corpus row (with ``ClassLabel`` ints or strings) back to a Document.

    Example:
        >>> s = LabelSchema.load("conflict")
        >>> d = Document("1", "Kyiv", (Span("a", 0, 4, "LOCATION"),))
        >>> from_row(to_row(d, s), s) == Document("1", "Kyiv", (Span("a", 0, 4, "LOCATION"),), (),
        ...                                       Provenance(source=""))
        True
    """
    ent, rel = schema.entity_labels, schema.relation_labels

    def name(value, names):
        return names[value] if isinstance(value, int) else value

    meta = json.loads(row["meta"]) if row.get("meta") else {}
    return Document(
        id=row["id"],
        text=row["text"],
        spans=tuple(
            Span(
                s["id"],
                int(s["start"]),
                int(s["end"]),
                name(s["label"], ent),
                {k: v for k, v in (s.get("attributes") or {}).items() if v is not None and k != "_none"},
            )
            for s in row["spans"]
        ),
        relations=tuple(Relation(r["head"], r["tail"], name(r["label"], rel)) for r in row["relations"]),
        provenance=Provenance(**meta) if meta else Provenance(),
    )


def documents_of(dataset: datasets.Dataset, schema: LabelSchema) -> list[Document]:
    """All documents of one split."""
    return [from_row(row, schema) for row in dataset]


@dataclass
class DuplicateReport:
    """Documents :func:`deduplicate` dropped (lenient), by reason, each with a message naming both copies."""

    dropped: Counter = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.dropped:
            return "no duplicate documents"
        counts = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items()))
        return f"dropped {sum(self.dropped.values())} duplicate document(s): {counts}"


def _origin(doc: Document) -> str:
    prov = doc.provenance
    where = prov.source or "<documents>"
    return f"{where}, task {prov.task_id}" if prov.task_id is not None else f"{where}, document {doc.id}"


def _text_key(text: str) -> str:
    # The same article, whatever runs of white space or a byte-order mark an export added.
    return " ".join(text.replace("\ufeff", " ").split())


#: The order in which :func:`deduplicate` visits named splits: the held-out ones first, so that the copy kept
#: is the one in the held-out split and the training split loses the leak.
_KEEP_ORDER = ("test", "validation", "train")


def deduplicate(splits: Mapping[str, Sequence[Document]] | Sequence[Document], *, lenient: bool = False,
                by_text: bool = True) -> tuple[dict[str, list[Document]], DuplicateReport]:
    """Refuse documents that repeat another, within a split and across splits, by id or by text.

    Two documents are the same when they have the same id (a Label Studio task id) or, with
    ``by_text``, the same text (compared with runs of white space collapsed). Strict: an
    :class:`InputError` naming the file and task of both copies (up to five pairs, and how many
    there are). ``lenient``: the repeat is dropped and counted; of a document in two splits, the
    copy in the held-out split (test, then validation) is kept. A plain sequence of documents is
    one split, ``""``. ``conflict-ie corpus build`` calls this on everything it read;
    :func:`split_documents` checks ids only (``by_text=False``), so call this first to check texts.

    Example:
        >>> a, b = Document("1", "Kyiv was hit."), Document("2", "Kyiv  was hit.")
        >>> kept, report = deduplicate({"train": [a], "test": [b]}, lenient=True)
        >>> [d.id for d in kept["train"]], [d.id for d in kept["test"]], dict(report.dropped)
        ([], ['2'], {'duplicate_text': 1})
    """
    if not isinstance(splits, Mapping):
        splits = {"": list(splits)}
    order = [s for s in _KEEP_ORDER if s in splits] + [s for s in splits if s not in _KEEP_ORDER]
    by_id: dict[str, tuple[str, Document]] = {}
    texts: dict[str, tuple[str, Document]] = {}
    kept: dict[str, list[Document]] = {name: [] for name in splits}
    report = DuplicateReport()
    for name in order:
        for doc in splits[name]:
            reason, first = None, None
            if doc.id in by_id:
                reason, (first_split, first) = "duplicate_id", by_id[doc.id]
            elif by_text and _text_key(doc.text) in texts:
                reason, (first_split, first) = "duplicate_text", texts[_text_key(doc.text)]
            if reason is None:
                by_id[doc.id] = texts[_text_key(doc.text)] = (name, doc)
                kept[name].append(doc)
                continue
            same = "the same id" if reason == "duplicate_id" else "the same text"
            if reason == "duplicate_id" and doc.text != first.text:
                same = "the same id but another text"
            place = (lambda split: f" ({split})") if any(splits) else (lambda split: "")
            report.dropped[reason] += 1
            report.messages.append(f"{_origin(doc)}{place(name)} has {same} as {_origin(first)}{place(first_split)}")
    if report.dropped and not lenient:
        n = sum(report.dropped.values())
        shown = "; ".join(report.messages[:5]) + (f"; and {n - 5} more" if n > 5 else "")
        raise InputError(f"{n} document(s) given twice, which would put one article in training and evaluation or "
                         f"weigh it double: {shown}. Give each document once (with --lenient the repeats are dropped, "
                         "counted)", reason="duplicate_document")
    return kept, report


def split_documents(docs: Sequence[Document], spec: SplitSpec) -> dict[str, list[Document]]:
    """Document-level split: deterministic for a given seed, whatever the input order.

    Documents must have unique ids (an :class:`InputError` names the file and task of both copies).
    No documents give three empty splits (callers that need some say so: the CLI refuses an input
    that gives none, :meth:`ReadResult.require_documents`). Texts are not compared here: call :func:`deduplicate` first
    (strict, or ``lenient=True`` to drop repeats) to refuse one article given twice under two ids.

    Example:
        >>> docs = [Document(str(i), f"text {i}") for i in range(10)]
        >>> {k: len(v) for k, v in split_documents(docs, SplitSpec(0.6, 0.2, 0.2)).items()}
        {'train': 6, 'validation': 2, 'test': 2}
    """
    deduplicate(docs, by_text=False)
    if spec.by_field:
        out: dict[str, list[Document]] = {s: [] for s in SPLITS}
        for doc in docs:
            value = _lookup(doc, spec.by_field)
            if not isinstance(value, str) or value not in out:
                raise InputError(
                    f"split field {spec.by_field!r} is {value!r}; expected one of {list(SPLITS)}", task=doc.id,
                    source=doc.provenance.source or None,
                )
            out[value].append(doc)
        return out
    ordered = sorted(docs, key=lambda d: d.id)
    random.Random(spec.seed).shuffle(ordered)
    n = len(ordered)
    n_test = round(n * spec.test)
    n_val = round(n * spec.validation)
    if spec.test > 0 and n >= 3:
        n_test = max(n_test, 1)
    if spec.validation > 0 and n >= 3:
        n_val = max(n_val, 1)
    n_train = n - n_val - n_test
    return {
        "train": ordered[:n_train],
        "validation": ordered[n_train : n_train + n_val],
        "test": ordered[n_train + n_val :],
    }


def _lookup(doc: Document, dotted: str) -> Any:
    node: Any = {"meta": (doc.provenance.fields or {}).get("meta", {}), "data": (doc.provenance.fields or {}).get(
        "data", {})}
    parts = dotted.split(".")
    if parts[0] not in node:
        parts = ["meta", *parts]
    for p in parts:
        node = node.get(p) if isinstance(node, Mapping) else None
    return node


def build_corpus(splits: Mapping[str, Sequence[Document]], schema: LabelSchema) -> datasets.DatasetDict:
    """Make the ``DatasetDict`` from documents already split.

    Every split is present (possibly empty) so that downstream code can rely on the names.
    """
    feats = features(schema)
    out = {}
    for name in SPLITS:
        rows = [to_row(d, schema) for d in sorted(splits.get(name, ()), key=lambda d: d.id)]
        columns = {k: [r[k] for r in rows] for k in feats}
        ds = datasets.Dataset.from_dict(columns, features=feats, split=name)
        # A content hash instead of a random fingerprint: reruns write byte-identical files.
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]
        ds._fingerprint = digest
        out[name] = ds
    return datasets.DatasetDict(out)


def save_corpus(corpus: datasets.DatasetDict, schema: LabelSchema, out_dir: str | Path, *,
                sources: Iterable[str] = ()) -> Path:
    """``save_to_disk`` plus the schema and a dataset card (``README.md``) with counts."""
    out = Path(out_dir)
    # One shard per split: datasets writes no shard for an empty split otherwise, and then cannot load it.
    corpus.save_to_disk(str(out), num_shards={name: 1 for name in corpus})
    schema.save(out / "schema.yaml")
    (out / "README.md").write_text(dataset_card(corpus, schema, sources=sources), encoding="utf-8")
    return out


def load_corpus(path: str | Path) -> tuple[datasets.DatasetDict, LabelSchema]:
    """Load a corpus folder written by :func:`save_corpus` with its schema."""
    path = Path(path)
    if not (path / "dataset_dict.json").exists():
        raise InputError(f"{path} is not a corpus folder (no dataset_dict.json); run 'conflict-ie corpus build'")
    return datasets.load_from_disk(str(path)), LabelSchema.load(path / "schema.yaml")


def _class_counts(ds: datasets.Dataset, column: str) -> Counter:
    """Counts of the ``ClassLabel`` names in a list column (``spans`` or ``relations``)."""
    names = ds.features[column].feature["label"].names
    return Counter(names[item["label"]] for row in ds[column] for item in row)


def label_counts(ds: datasets.Dataset, schema: LabelSchema) -> Counter:
    """Entities per label in one split."""
    return _class_counts(ds, "spans")


def relation_counts(ds: datasets.Dataset, schema: LabelSchema) -> Counter:
    """Relations per label in one split."""
    return _class_counts(ds, "relations")


def dataset_card(corpus: datasets.DatasetDict, schema: LabelSchema, *, sources: Iterable[str] = ()) -> str:
    """A markdown card with documents, entities per label and relations per label, per split."""
    names = [s for s in SPLITS if s in corpus]
    lines = [
        "---",
        "language: [en]",
        "task_categories: [token-classification]",
        f"pretty_name: conflict_ie corpus ({schema.name} schema)",
        "---",
        f"# Corpus ({schema.name} schema)",
        "",
        "Built by `conflict-ie corpus build`. One row per document; splits are by document.",
        "",
    ]
    srcs = sorted(set(sources))
    if srcs:
        lines += ["Sources: " + ", ".join(f"`{s}`" for s in srcs), ""]
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines.append("| documents | " + " | ".join(str(len(corpus[n])) for n in names) + " |")
    counts = {n: label_counts(corpus[n], schema) for n in names}
    for label in schema.entity_labels:
        lines.append(f"| {label} | " + " | ".join(str(counts[n][label]) for n in names) + " |")
    rcounts = {n: relation_counts(corpus[n], schema) for n in names}
    for label in schema.relation_labels:
        lines.append(f"| relation {label} | " + " | ".join(str(rcounts[n][label]) for n in names) + " |")
    return "\n".join(lines) + "\n"
