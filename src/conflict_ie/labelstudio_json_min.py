"""Label Studio JSON_MIN exports -> Documents (no relations).

Read through :func:`conflict_ie.labelstudio.read_labelstudio`, which detects the format.
JSON_MIN is lossy (``../shared/spec/labelstudio.md``, gotcha 6): it drops relations, meta,
predictions, ground-truth flags and cancelled annotations, and repeats a task once per
annotator. What it keeps is read here with the same checks as the full export.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from conflict_ie.documents import Provenance
from conflict_ie.labelstudio_regions import ReadReport, ReadResult, _parse_time, build_document
from conflict_ie.schema import LabelSchema


def is_json_min(tasks: Sequence[Mapping[str, Any]], text_field: str = "text") -> bool:
    """JSON_MIN puts the text and the label lists at the top level; the full export nests them.

    Example:
        >>> is_json_min([{"id": 1, "text": "x", "label": []}]), is_json_min([{"id": 1, "data": {"text": "x"}}])
        (True, False)
    """
    return bool(tasks) and all("data" not in t and "annotations" not in t and text_field in t for t in tasks)


def read_json_min(
    tasks: Sequence[Mapping[str, Any]], schema: LabelSchema | None, *, text_field: str, lenient: bool,
    where: str, report: ReadReport,
) -> ReadResult:
    """Read JSON_MIN rows (``tasks``, already loaded) into Documents, counting what is skipped in ``report``.

    Called by :func:`conflict_ie.labelstudio.read_labelstudio`, which loads the file and detects the format.
    """
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
