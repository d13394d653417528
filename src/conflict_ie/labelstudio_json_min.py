"""Label Studio JSON_MIN exports -> Documents (no relations; per-region choices tied by offsets).

Read through :func:`conflict_ie.labelstudio.read_labelstudio`, which detects the format.
JSON_MIN is lossy (``../shared/spec/labelstudio.md``, gotcha 6): it drops relations, meta,
predictions, ground-truth flags and cancelled annotations, and repeats a task once per
annotator. What it keeps is read here with the same checks as the full export.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from conflict_ie.documents import Provenance
from conflict_ie.errors import InputError
from conflict_ie.labelstudio_regions import ReadReport, ReadResult, build_document
from conflict_ie.labelstudio_values import json_type, lone_surrogate, parse_time, task_id_of, whole_number
from conflict_ie.schema import LabelSchema

#: The name of the schema's labels control tag in the labeling config (:meth:`LabelSchema.labelstudio_config`).
LABELS_TAG = "label"


def is_json_min(tasks: Sequence[Mapping[str, Any]], text_field: str = "text") -> bool:
    """JSON_MIN puts the text and the label lists at the top level; the full export nests them.

    Example:
        >>> is_json_min([{"id": 1, "text": "x", "label": []}]), is_json_min([{"id": 1, "data": {"text": "x"}}])
        (True, False)
    """
    return bool(tasks) and all("data" not in t and "annotations" not in t and text_field in t for t in tasks)


#: Keys that Label Studio's JSON_MIN writer adds to every row beside the task data and the control tags.
_JSON_MIN_ROW_KEYS = frozenset({"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "history",
                                "agreement"})


def _is_region_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _labels_key(region: Any) -> str | None:
    """The key of a region object that holds its labels (``labels``, ``hypertextlabels`` ...), if any."""
    if not isinstance(region, Mapping):
        return None
    return next((k for k in region if isinstance(k, str) and k.endswith("labels")), None)


def _offsets(obj: Mapping[str, Any]) -> tuple[int, int] | None:
    start, end = whole_number(obj.get("start")), whole_number(obj.get("end"))
    return None if start is None or end is None else (start, end)


def json_min_results(
    row: Mapping[str, Any], schema: LabelSchema | None, *, text_field: str = "text", where: str = "<tasks>",
    task_id: Any = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One JSON_MIN row's regions as full-export result items, plus notes on what was not used.

    JSON_MIN writes each control tag as a key of the row: a labels tag as a list of
    ``{start, end, text, labels}`` regions, a per-region choices tag as a list of
    ``{start, end, text, choices}`` objects. Those carry no region id, so a choice is tied to
    the labelled region with the same ``start`` and ``end``. Label Studio's own writer flattens a
    region's single choice to a bare string (``"casualty_type": "killed"``, or a list of strings
    for several regions), losing the offsets; such a value, or a choice whose offsets match no
    labelled region, raises an :class:`InputError` naming the file, task and field (in lenient
    mode too: the export format lost the link, and no skipping fixes that; the full JSON export does).
    So does a value of the schema's labels field (``label``) that is not a list of regions. Each
    item's ``_field`` says where in the row it came from (``label[2]``), for messages.

    Example:
        >>> row = {"id": 4, "text": "Two soldiers died", "label": [
        ...     {"start": 0, "end": 12, "text": "Two soldiers", "labels": ["CASUALTY_FIGURE"]}],
        ...     "casualty_type": [{"start": 0, "end": 12, "text": "Two soldiers", "choices": ["killed"]}]}
        >>> items, _ = json_min_results(row, LabelSchema.load("conflict"))
        >>> [(i["id"], i["type"]) for i in items]
        [('label-0', 'labels'), ('label-0', 'choices')]
    """
    # The reader passes the id it names the row by (``#INDEX`` for a row with no id), so that an error
    # here names the same task as every other message about the row.
    task_id = row.get("id") if task_id is None else task_id
    per_region = {a.name for a in schema.attributes} if schema is not None else set()
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    by_offsets: dict[tuple[Any, Any], list[str]] = {}
    choice_fields: list[tuple[str, list[Mapping[str, Any]]]] = []

    def refuse(name: str, problem: str) -> InputError:
        error = InputError(
            f"field {name!r}: {problem}; JSON_MIN cannot tie it to its labelled region, so export the project "
            "as JSON (the full export, which keeps region ids) and read that instead",
            source=where, task=task_id, reason="json_min_unmatched_choice",
        )
        error.field = name  # named at the front of the message already
        return error

    for name, value in row.items():
        if name == text_field or name in _JSON_MIN_ROW_KEYS:
            continue
        labels_field = isinstance(value, list) and any(_labels_key(v) for v in value)
        if labels_field or (name == LABELS_TAG and schema is not None and value != []):
            if not isinstance(value, list):
                raise InputError(f"is {json_type(value)}, not a list of labelled regions", source=where,
                                 task=task_id, field=name, reason="malformed_task")
            for i, region in enumerate(value):
                labels_key = _labels_key(region) or "labels"
                rid = f"{name}-{i}"
                region_value = {**region, "labels": region.get(labels_key)} if isinstance(region, Mapping) else region
                results.append({"id": rid, "type": "labels", "from_name": name, "value": region_value,
                                "_field": f"{name}[{i}]"})
                offsets = _offsets(region) if isinstance(region, Mapping) else None
                if offsets is not None:  # regions without whole-number offsets are refused when read
                    by_offsets.setdefault(offsets, []).append(rid)
        elif _is_region_list(value) and all("choices" in v and "start" in v for v in value):
            choice_fields.append((name, value))  # matched once every labelled region is known
        elif name in per_region:
            # A bare string or list of strings (one region's or several regions' single choices), or
            # objects without offsets: nothing says which region each belongs to.
            raise refuse(name, f"value {value!r} has no region offsets")
        elif _is_region_list(value) and all("start" in v for v in value):
            notes.append(f"{where}, task {task_id}: field {name!r} holds regions of another kind; not used")
    for name, objects in choice_fields:
        for i, obj in enumerate(objects):
            start, end = obj.get("start"), obj.get("end")
            offsets = _offsets(obj)
            if offsets is None:
                raise refuse(name, f"the choice {obj.get('choices')!r} has offsets {start!r}-{end!r}, which are not "
                                   "whole numbers")
            owners = by_offsets.get(offsets, [])
            if len(owners) != 1:
                problem = "matches no labelled region" if not owners else f"matches {len(owners)} labelled regions"
                raise refuse(name, f"the choice {obj.get('choices')} at {start}-{end} {obj.get('text')!r} {problem}")
            results.append({"id": owners[0], "type": "choices", "from_name": name, "value": dict(obj),
                            "_field": f"{name}[{i}]"})
    return results, notes


def read_json_min(
    tasks: Sequence[Mapping[str, Any]], schema: LabelSchema | None, *, text_field: str, lenient: bool,
    where: str, report: ReadReport,
) -> ReadResult:
    """Read JSON_MIN rows (``tasks``, already loaded) into Documents, counting what is skipped in ``report``.

    Called by :func:`conflict_ie.labelstudio.read_labelstudio`, which loads the file and detects the format.

    Example:
        >>> rows = [{"id": 1, "text": "Kyiv", "annotation_id": 3, "label": [
        ...     {"start": 0, "end": 4, "text": "Kyiv", "labels": ["LOCATION"]}]},
        ...     {"id": 2, "text": "No one labelled this.", "annotation_id": None}]
        >>> res = read_json_min(rows, None, text_field="text", lenient=False, where="min.json", report=ReadReport())
        >>> [(d.id, [s.label for s in d.spans]) for d in res.documents], dict(res.report.skipped)
        ([('1', ['LOCATION'])], {'no_annotation': 1})
    """
    report.warnings.append(
        f"{where} is a JSON_MIN export: it carries no relations, no meta, no ground-truth flags and no cancelled "
        "annotations; export as JSON to keep them"
    )
    # JSON_MIN repeats a task once per annotator; keep the most recently updated row per task.
    latest: dict[str, tuple[Any, Mapping[str, Any]]] = {}
    for index, row in enumerate(tasks):
        task_id = task_id_of(row, index, where)
        key = str(task_id)
        if key not in latest or _updated(row, where, task_id) >= _updated(latest[key][1], where, task_id):
            latest[key] = (task_id, row)
    if len(latest) < len(tasks):
        report.warnings.append(f"{len(tasks) - len(latest)} repeated row(s) of other annotators were not used")
    report.n_tasks = len(latest)  # rows repeat per annotator; count tasks as the full export does
    documents = []
    empty_annotations = 0
    for key, (task_id, row) in latest.items():
        text = row[text_field]
        if not isinstance(text, str):
            problem = f"{text_field!r} is {json_type(text)}, not a string"
            if not lenient:
                raise InputError(problem, source=where, task=task_id, field=text_field, reason="missing_text")
            report.add("missing_text", f"{where}, task {task_id}, field {text_field}: {problem}")
            continue
        bad = lone_surrogate(row)
        if bad is not None:
            raise InputError("holds a lone surrogate (a JSON \\ud800-style escape that is half a character); no "
                             "file or tokenizer can hold it", source=where, task=task_id, field=bad,
                             reason="lone_surrogate")
        results, notes = json_min_results(row, schema, text_field=text_field, where=where, task_id=task_id)
        fields = [item.pop("_field") for item in results]
        report.warnings += notes
        # Label Studio writes a task without annotations as a row with annotation_id null and no control-tag
        # keys. Like a full-export task without a usable annotation it is counted and skipped (in strict mode
        # too), never read as an empty, negative document. A row with an annotation id but no regions is a
        # submitted annotation that found nothing: a document with no spans, as in the full export.
        if row.get("annotation_id") is None and not results:
            report.unused["unannotated"] += 1
            report.add("no_annotation", f"{where}, task {task_id}: no annotation (no annotation_id, no regions)")
            continue
        if not results:
            empty_annotations += 1
        provenance = Provenance(
            source=where,
            task_id=key,
            annotation_id=None if row.get("annotation_id") is None else str(row["annotation_id"]),
            annotator=None if row.get("annotator") is None else str(row["annotator"]),
        )
        documents.append(
            build_document(
                key, text, results, schema, provenance=provenance, lenient=lenient, report=report, where=where,
                field=fields,
            )
        )
    if empty_annotations:
        report.warnings.append(
            f"{where}: {empty_annotations} annotated task(s) have no regions; read as documents with no spans"
        )
    report.n_documents = len(documents)
    return ReadResult(documents, report, where)


def _updated(row: Mapping[str, Any], where: str, task_id: Any):
    try:
        return parse_time(row.get("updated_at"))
    except ValueError as exc:
        raise InputError(str(exc), source=where, task=task_id, field="updated_at", reason="malformed_task") from None
