"""Label Studio exports <-> Documents.

Reads the full JSON export (the only format that keeps relations, per-region
attributes and every annotator) and JSON_MIN (with a warning: no relations),
and writes Documents back as Label Studio tasks or predictions. Facts about
the format that this code relies on are in ``../shared/spec/labelstudio.md``:
offsets are code-point offsets into ``data[text_field]``; ``value.text`` is
not trustworthy, so the text is sliced here and compared; relations may be
drawn ``left`` (turned around here) or ``bi`` (kept only when the schema
declares the relation symmetric).

Strict by default: the first bad region raises an :class:`InputError` naming
the file, task, region and problem. ``lenient=True`` skips bad regions (and
relations that lose an endpoint) and counts them by reason in the report.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from conflict_ie.documents import (
    Document,
    Problem,
    Provenance,
    Relation,
    Span,
    check_relation,
    check_span,
    find_overlaps,
    normalize_ws,
)
from conflict_ie.errors import InputError
from conflict_ie.schema import LabelSchema

#: Annotation choice policies (see :func:`choose_annotation`).
POLICIES = ("ground_truth", "latest", "first")


@dataclass
class ReadReport:
    """What reading skipped or noticed, so that nothing is lost silently."""

    n_tasks: int = 0
    n_documents: int = 0
    skipped: Counter = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        self.messages.append(message)

    def merge(self, other: "ReadReport") -> None:
        self.n_tasks += other.n_tasks
        self.n_documents += other.n_documents
        self.skipped.update(other.skipped)
        self.messages += other.messages
        self.warnings += other.warnings

    def summary(self) -> str:
        """One paragraph for the terminal."""
        lines = [f"read {self.n_documents} document(s) from {self.n_tasks} task(s)"]
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class ReadResult:
    documents: list[Document]
    report: ReadReport


def _parse_time(value: Any) -> str:
    # ISO strings from Label Studio sort correctly once normalised; missing -> oldest.
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).isoformat()
    except ValueError:
        return str(value)


def annotator_of(annotation: Mapping[str, Any]) -> str | None:
    """The annotator's e-mail when the export is expanded, else their user id, as a string."""
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        return str(who.get("email") or who.get("id"))
    return None if who is None else str(who)


def usable_annotations(task: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Annotations that may be training data: not cancelled (drafts live elsewhere and are never read)."""
    return [a for a in task.get("annotations") or () if not a.get("was_cancelled")]


def choose_annotation(task: Mapping[str, Any], policy: str = "ground_truth") -> Mapping[str, Any] | None:
    """Pick the one annotation of a task that becomes the document.

    Policies:
      - ``ground_truth`` (default): the annotation marked ground truth, else the latest updated;
      - ``latest``: the most recently updated;
      - ``first``: the earliest created;
      - ``annotator:WHO``: the latest by that annotator (user id or e-mail), else none.
    Cancelled annotations are never chosen; drafts are never read.

    Example:
        >>> t = {"annotations": [{"id": 1, "updated_at": "2024-01-02", "result": []},
        ...                      {"id": 2, "updated_at": "2024-01-01", "ground_truth": True, "result": []}]}
        >>> choose_annotation(t)["id"], choose_annotation(t, "latest")["id"]
        (2, 1)
    """
    candidates = usable_annotations(task)
    if policy.startswith("annotator:"):
        who = policy.split(":", 1)[1]
        candidates = [a for a in candidates if annotator_of(a) == who or str(_user_id(a)) == who]
        policy = "latest"
    if not candidates:
        return None
    latest = lambda a: (_parse_time(a.get("updated_at") or a.get("created_at")), str(a.get("id")))  # noqa: E731
    if policy == "ground_truth":
        gt = [a for a in candidates if a.get("ground_truth")]
        return max(gt or candidates, key=latest)
    if policy == "latest":
        return max(candidates, key=latest)
    if policy == "first":
        return min(candidates, key=lambda a: (_parse_time(a.get("created_at")), str(a.get("id"))))
    raise ValueError(f"unknown annotation policy {policy!r}; use one of {POLICIES} or 'annotator:WHO'")


def _user_id(annotation: Mapping[str, Any]) -> Any:
    who = annotation.get("completed_by")
    return who.get("id") if isinstance(who, Mapping) else who


def _load_json(source: str | Path | Sequence[Any]) -> tuple[list[Any], str]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", source=path) from None
        try:
            data = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", source=path) from None
        except json.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", source=path) from None
        name = str(path)
    else:
        data, name = source, "<tasks>"
    if isinstance(data, Mapping) and "id" in data and "data" in data:
        data = [data]  # a single task, as the task page's JSON view gives it
    if not isinstance(data, list):
        raise InputError(
            f"not a list of tasks (got a JSON {type(data).__name__}); export the project as JSON", source=name
        )
    for i, task in enumerate(data):
        if not isinstance(task, Mapping):
            raise InputError(f"item {i} is a JSON {type(task).__name__}, not a task object", source=name)
    return data, name


def is_json_min(tasks: Sequence[Mapping[str, Any]], text_field: str = "text") -> bool:
    """JSON_MIN puts the text and the label lists at the top level; the full export nests them."""
    return bool(tasks) and all("data" not in t and "annotations" not in t and text_field in t for t in tasks)


def _region_id(task_id: Any, index: int, item: Mapping[str, Any]) -> str:
    # Label Studio always sets ids; exports made by other tools may not. Derive a stable one.
    if item.get("id"):
        return str(item["id"])
    return hashlib.sha1(f"{task_id}:{index}".encode()).hexdigest()[:10]


def parse_results(
    results: Sequence[Mapping[str, Any]],
    text: str,
    schema: LabelSchema | None,
    *,
    task_id: Any = None,
) -> tuple[list[Span], list[Relation], list[Problem], list[str]]:
    """Turn one annotation's ``result`` list into spans and relations, plus the problems found.

    Returns ``(spans, relations, problems, notes)``; nothing is dropped here, the caller decides.
    """
    problems: list[Problem] = []
    notes: list[str] = []
    raw_spans: dict[str, dict[str, Any]] = {}
    attrs: dict[str, dict[str, str]] = {}
    relations: list[Relation] = []
    for index, item in enumerate(results):
        kind = item.get("type")
        value = item.get("value") or {}
        if kind == "relation":
            labels = item.get("labels") or []
            head, tail = str(item.get("from_id")), str(item.get("to_id"))
            if len(labels) != 1:
                problems.append(
                    Problem(
                        "relation_label_count",
                        head,
                        f"relation {head} -> {tail} has {len(labels)} labels {labels}; exactly one is needed",
                    )
                )
                continue
            label = labels[0]
            direction = item.get("direction", "right")
            if direction == "left":
                head, tail = tail, head
            elif direction == "bi":
                rel = schema.relation(label) if schema else None
                if rel is None or not rel.symmetric:
                    problems.append(
                        Problem(
                            "bidirectional_relation",
                            head,
                            f"relation {label} {head} <-> {tail} is drawn bidirectional, but the schema declares "
                            f"{label} directed; redraw it with an arrow",
                        )
                    )
                    continue
            relations.append(Relation(head, tail, label))
        elif kind and kind.endswith("labels"):
            rid = _region_id(task_id, index, item)
            if "start" not in value or "end" not in value:
                problems.append(Problem("missing_offsets", rid, "region has no value.start/value.end"))
                continue
            labels = value.get(kind) or value.get("labels") or []
            if len(labels) != 1:
                problems.append(
                    Problem("region_label_count", rid, f"region has {len(labels)} labels {labels}; exactly one needed")
                )
                continue
            if rid in raw_spans:
                problems.append(Problem("duplicate_region", rid, "two label results share this region id"))
                continue
            raw_spans[rid] = {"value": value, "label": labels[0]}
        elif kind == "choices":
            rid = item.get("id")
            choices = value.get("choices") or []
            name = str(item.get("from_name"))
            if rid is None or "start" not in value:
                notes.append(f"task {task_id}: task-level choice {name}={choices} is not a region attribute; ignored")
                continue
            if len(choices) != 1:
                problems.append(
                    Problem("attribute_choice_count", str(rid), f"{name} has {len(choices)} choices; one needed")
                )
                continue
            attrs.setdefault(str(rid), {})[name] = str(choices[0])
        else:
            notes.append(f"task {task_id}: result of type {kind!r} ({item.get('from_name')}) is not used")

    spans = []
    for rid, raw in raw_spans.items():
        value = raw["value"]
        try:
            start, end = int(value["start"]), int(value["end"])
        except (TypeError, ValueError):
            problems.append(Problem("missing_offsets", rid, f"offsets are not integers: {value.get('start')!r}"))
            continue
        span = Span(rid, start, end, str(raw["label"]), attrs.pop(rid, {}))
        span_problems = list(check_span(text, span, schema))
        if not span_problems and "text" in value and value["text"] is not None:
            sliced = text[start:end]
            if normalize_ws(sliced) != normalize_ws(str(value["text"])):
                span_problems.append(
                    Problem(
                        "text_mismatch",
                        rid,
                        f"value.text {value['text']!r} differs from the text at {start}-{end}, {sliced!r} "
                        "(was the task text edited after annotation?)",
                    )
                )
        if not span_problems and schema is not None:
            for attr in schema.attributes_for(span.label):
                if attr.required and attr.name not in span.attributes:
                    span_problems.append(
                        Problem("missing_attribute", rid, f"{span.label} region has no {attr.name} choice")
                    )
        if span_problems:
            problems += span_problems
        else:
            spans.append(span)
    for rid in attrs:
        problems.append(Problem("orphan_attribute", rid, f"per-region choice {attrs[rid]} has no labelled region"))
    return spans, relations, problems, notes


def build_document(
    doc_id: str,
    text: str,
    results: Sequence[Mapping[str, Any]],
    schema: LabelSchema | None,
    *,
    provenance: Provenance,
    lenient: bool,
    report: ReadReport,
    where: str,
) -> Document:
    """Validate one annotation's results and make the Document (strict raises, lenient counts)."""

    def fail(problem: Problem) -> None:
        if not lenient:
            raise InputError(problem.message, source=where, task=doc_id, region=problem.region, reason=problem.reason)
        report.add(problem.reason, f"{where}, task {doc_id}, region {problem.region}: {problem.message}")

    spans, relations, problems, notes = parse_results(results, text, schema, task_id=doc_id)
    report.warnings += notes
    for problem in problems:
        fail(problem)
    # Overlaps: the schema has no nesting. Lenient mode keeps the earlier span of a clash.
    dropped: set[str] = set()
    for a, b in find_overlaps(spans):
        if a.id in dropped or b.id in dropped:
            continue
        fail(
            Problem(
                "overlapping_spans",
                b.id,
                f"spans overlap: {a.id} {a.label} {a.start}-{a.end} {text[a.start:a.end]!r} and "
                f"{b.id} {b.label} {b.start}-{b.end} {text[b.start:b.end]!r} (nested spans are not allowed)",
            )
        )
        dropped.add(b.id)
    spans = [s for s in spans if s.id not in dropped]
    by_id = {s.id: s for s in spans}
    kept_relations = []
    seen = set()
    for rel in relations:
        rel_problems = list(check_relation(rel, by_id, schema))
        for problem in rel_problems:
            fail(problem)
        if rel_problems:
            continue
        if rel in seen:
            report.warnings.append(f"{where}, task {doc_id}: duplicate relation {rel.label} {rel.head}->{rel.tail}")
            continue
        seen.add(rel)
        kept_relations.append(rel)
    spans.sort(key=lambda s: (s.start, s.end))
    return Document(doc_id, text, tuple(spans), tuple(kept_relations), provenance)


def read_labelstudio(
    source: str | Path | Sequence[Any],
    schema: LabelSchema | None,
    *,
    text_field: str | None = None,
    policy: str = "ground_truth",
    lenient: bool = False,
) -> ReadResult:
    """Read a Label Studio full JSON (or JSON_MIN) export into Documents.

    ``schema`` checks labels, attributes and relation types (``None`` skips those checks).
    Tasks without a usable annotation are counted (``no_annotation``), not turned into
    empty documents, since an unannotated article is not a negative example.

    Example:
        >>> region = {"id": "a", "type": "labels", "from_name": "label", "to_name": "text",
        ...           "value": {"start": 0, "end": 12, "text": "Wagner Group", "labels": ["ARMED_GROUP"]}}
        >>> tasks = [{"id": 7, "data": {"text": "Wagner Group attacked."},
        ...           "annotations": [{"id": 1, "result": [region]}]}]
        >>> res = read_labelstudio(tasks, LabelSchema.load("conflict"))
        >>> [(s.label, s.start, s.end) for s in res.documents[0].spans]
        [('ARMED_GROUP', 0, 12)]
    """
    tasks, where = _load_json(source)
    text_field = text_field or (schema.text_field if schema else "text")
    report = ReadReport(n_tasks=len(tasks))
    if is_json_min(tasks, text_field):
        return _read_json_min(tasks, schema, text_field=text_field, lenient=lenient, where=where, report=report)
    documents = []
    for index, task in enumerate(tasks):
        task_id = task.get("id", f"#{index}")
        data = task.get("data")
        if not isinstance(data, Mapping):
            raise InputError("has no 'data' object; is this a Label Studio export?", source=where, task=task_id)
        text = data.get(text_field)
        if not isinstance(text, str):
            problem = (
                f"data has no text field {text_field!r} (fields: {sorted(data)}); pass text_field=/--text-field"
                if text is None
                else f"data.{text_field} is a {type(text).__name__}, not a string"
            )
            if not lenient:
                raise InputError(problem, source=where, task=task_id, reason="missing_text")
            report.add("missing_text", f"{where}, task {task_id}: {problem}")
            continue
        annotation = choose_annotation(task, policy)
        if annotation is None:
            report.add("no_annotation", f"{where}, task {task_id}: no usable annotation under policy {policy!r}")
            continue
        provenance = Provenance(
            source=where,
            task_id=str(task_id),
            annotation_id=None if annotation.get("id") is None else str(annotation["id"]),
            annotator=annotator_of(annotation),
            fields={
                "data": {k: v for k, v in data.items() if k != text_field},
                "meta": dict(task.get("meta") or {}),
            },
        )
        documents.append(
            build_document(
                str(task_id),
                text,
                annotation.get("result") or [],
                schema,
                provenance=provenance,
                lenient=lenient,
                report=report,
                where=where,
            )
        )
    report.n_documents = len(documents)
    return ReadResult(documents, report)


def _read_json_min(tasks, schema, *, text_field, lenient, where, report) -> ReadResult:
    report.warnings.append(
        f"{where} is a JSON_MIN export: it carries no relations, no meta, no ground-truth flags and no cancelled "
        "annotations; export as JSON to keep them"
    )
    # JSON_MIN repeats a task once per annotator; keep the most recently updated row per task.
    latest: dict[str, Mapping[str, Any]] = {}
    for index, row in enumerate(tasks):
        key = str(row.get("id", f"#{index}"))
        if key not in latest or _parse_time(row.get("updated_at")) >= _parse_time(latest[key].get("updated_at")):
            latest[key] = row
    if len(latest) < len(tasks):
        report.warnings.append(f"{len(tasks) - len(latest)} repeated row(s) of other annotators were not used")
    documents = []
    for task_id, row in latest.items():
        results = []
        for key, value in row.items():
            if isinstance(value, list) and value and all(isinstance(v, Mapping) and "start" in v for v in value):
                for i, region in enumerate(value):
                    labels_key = next((k for k in region if k.endswith("labels")), "labels")
                    results.append(
                        {"id": f"{key}-{i}", "type": "labels", "from_name": key, "value": {**region, "labels":
                                                                                        region.get(labels_key, [])}}
                    )
        provenance = Provenance(
            source=where,
            task_id=task_id,
            annotation_id=None if row.get("annotation_id") is None else str(row["annotation_id"]),
            annotator=None if row.get("annotator") is None else str(row["annotator"]),
        )
        documents.append(
            build_document(
                task_id, row[text_field], results, schema, provenance=provenance, lenient=lenient, report=report,
                where=where,
            )
        )
    report.n_documents = len(documents)
    return ReadResult(documents, report)


# ----------------------------------------------------------------------------- writing
def document_results(
    doc: Document, *, from_name: str = "label", to_name: str = "text", scores: Mapping[str, float] | None = None
) -> list[dict[str, Any]]:
    """A document's spans, per-region attributes and relations as Label Studio result items.

    Example:
        >>> d = Document("1", "22 people died", (Span("c1", 0, 9, "CASUALTY_FIGURE", {"casualty_type": "killed"}),))
        >>> [r["type"] for r in document_results(d)]
        ['labels', 'choices']
    """
    out: list[dict[str, Any]] = []
    for span in doc.spans:
        value = {"start": span.start, "end": span.end, "text": doc.text[span.start : span.end]}
        item = {
            "id": span.id,
            "from_name": from_name,
            "to_name": to_name,
            "type": "labels",
            "value": {**value, "labels": [span.label]},
        }
        if scores and span.id in scores:
            item["score"] = float(scores[span.id])
        out.append(item)
        for name, choice in span.attributes.items():
            out.append(
                {"id": span.id, "from_name": name, "to_name": to_name, "type": "choices",
                 "value": {**value, "choices": [choice]}}
            )
    for rel in doc.relations:
        out.append(
            {"from_id": rel.head, "to_id": rel.tail, "type": "relation", "direction": "right", "labels": [rel.label]}
        )
    return out


def documents_to_tasks(
    documents: Iterable[Document],
    *,
    text_field: str = "text",
    annotator: Mapping[str, Any] | int = 1,
    project: int = 1,
    created_at: str = "2026-01-01T00:00:00.000000Z",
    first_id: int = 1,
) -> list[dict[str, Any]]:
    """Documents as a Label Studio full JSON export (one ground-truth annotation per task).

    ``data`` gets the text plus the document's ``provenance.fields['data']``; ``meta`` its
    ``provenance.fields['meta']``. Timestamps are fixed so that the output is reproducible.
    """
    tasks = []
    for n, doc in enumerate(documents):
        task_id = first_id + n
        fields = doc.provenance.fields or {}
        results = document_results(doc)
        tasks.append(
            {
                "id": task_id,
                "annotations": [
                    {
                        "id": task_id,
                        "completed_by": annotator,
                        "result": results,
                        "was_cancelled": False,
                        "ground_truth": True,
                        "created_at": created_at,
                        "updated_at": created_at,
                        "draft_created_at": None,
                        "lead_time": 0.0,
                        "prediction": {},
                        "result_count": len(results),
                        "unique_id": hashlib.sha1(f"{doc.id}".encode()).hexdigest()[:36],
                        "import_id": None,
                        "last_action": None,
                        "bulk_created": False,
                        "task": task_id,
                        "project": project,
                        "updated_by": annotator if isinstance(annotator, int) else annotator.get("id"),
                        "parent_prediction": None,
                        "parent_annotation": None,
                        "last_created_by": None,
                    }
                ],
                "file_upload": None,
                "drafts": [],
                "predictions": [],
                "data": {text_field: doc.text, **dict(fields.get("data") or {})},
                "meta": dict(fields.get("meta") or {}),
                "created_at": created_at,
                "updated_at": created_at,
                "inner_id": task_id,
                "total_annotations": 1,
                "cancelled_annotations": 0,
                "total_predictions": 0,
                "comment_count": 0,
                "unresolved_comment_count": 0,
                "last_comment_updated_at": None,
                "project": project,
                "updated_by": annotator if isinstance(annotator, int) else annotator.get("id"),
                "comment_authors": [],
            }
        )
    return tasks
