"""Label Studio exports <-> Documents.

Reads the full JSON export (the only format that keeps relations, per-region
attributes and every annotator) and JSON_MIN (with a warning: no relations;
per-region choices only where their offsets tie them to a region), and writes
Documents back as Label Studio tasks or predictions. Facts about the format
that this code relies on are in ``../shared/spec/labelstudio.md``: offsets are
code-point offsets into ``data[text_field]``; ``value.text`` is not
trustworthy, so the text is sliced here and compared; relations may be drawn
``left`` (turned around here) or ``bi`` (kept only when the schema declares
the relation symmetric). Older Label Studio versions wrote offsets in UTF-16
code units; a region whose UTF-16 reading (and only that) gives back its
``value.text`` is repaired and counted in the report (``repaired``).

Strict by default: the first bad region raises an :class:`InputError` naming
the file, task, region and problem. ``lenient=True`` skips bad regions (and
relations that lose an endpoint) and counts them by reason in the report.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from conflict_ie.documents import Document, Provenance, Span
from conflict_ie.errors import InputError
from conflict_ie.labelstudio_json_min import is_json_min, json_min_results, read_json_min  # noqa: F401
# The reading layer lives in labelstudio_regions (kept under the module size limit); its public names are
# re-exported here, where callers have always imported them from.
from conflict_ie.labelstudio_regions import (  # noqa: F401
    ReadReport,
    ReadResult,
    _parse_time,
    build_document,
    parse_results,
    utf16_to_code_points,
)
from conflict_ie.schema import LabelSchema

#: Annotation choice policies (see :func:`choose_annotation`).
POLICIES = ("ground_truth", "latest", "first")


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
        return read_json_min(tasks, schema, text_field=text_field, lenient=lenient, where=where, report=report)
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


# ----------------------------------------------------------------------------- writing
def document_results(
    doc: Document, *, from_name: str = "label", to_name: str = "text", scores: Mapping[str, float] | None = None,
    symmetric: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """A document's spans, per-region attributes and relations as Label Studio result items.

    Relations whose label is in ``symmetric`` are written with ``direction: "bi"``.

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
    symmetric = set(symmetric)
    for rel in doc.relations:
        direction = "bi" if rel.label in symmetric else "right"
        out.append(
            {"from_id": rel.head, "to_id": rel.tail, "type": "relation", "direction": direction, "labels": [rel.label]}
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
