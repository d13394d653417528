"""Documents -> Label Studio result items and tasks (the full JSON export's shape).

``conflict_ie.labelstudio`` re-exports these names.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping

from conflict_ie.documents import Document, Span  # noqa: F401  (Span: the doctest)


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
