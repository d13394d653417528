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

Strict by default: the first bad task, region or relation raises an :class:`InputError`
naming the file, task, region and field. ``lenient=True`` skips bad tasks and regions (and
relations that lose an endpoint), trims white space from span edges, and counts each by
reason in the report. What a malformed export gets, in either mode: a field of the wrong
JSON type (``annotations`` an object, ``result`` a string, an annotation a number) is named;
a task id seen twice in one file is refused (lenient: the repeat is skipped, counted as
``duplicate_task``); "latest" compares times as times, offsets included. A task text that
begins with U+FEFF keeps it: Label Studio's offsets count it, so removing it would shift
every span; no span may begin with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from conflict_ie.documents import Provenance
from conflict_ie.errors import ConfigError, InputError
from conflict_ie.labelstudio_json_min import is_json_min, json_min_results, read_json_min  # noqa: F401
from conflict_ie.labelstudio_report import UNUSED, ReadReport, ReadResult
# The reading layer lives in labelstudio_regions and the writers in labelstudio_writer (kept under the module
# size limit); their public names are re-exported here, where callers have always imported them from.
from conflict_ie.labelstudio_regions import build_document, parse_results, utf16_to_code_points  # noqa: F401
from conflict_ie.labelstudio_values import OLDEST, json_type, lone_surrogate, parse_time, task_id_of
from conflict_ie.labelstudio_writer import document_results, documents_to_tasks  # noqa: F401
from conflict_ie.schema import LabelSchema
from conflict_ie.textfile import read_text

__all__ = ["POLICIES", "ReadReport", "ReadResult", "annotator_of", "build_document", "check_policy",
           "choose_annotation", "document_results", "documents_to_tasks", "parse_results", "read_labelstudio",
           "usable_annotations", "utf16_to_code_points"]

#: Annotation choice policies (see :func:`choose_annotation`).
POLICIES = ("ground_truth", "latest", "first")


def check_policy(policy: Any) -> None:
    """Raise a :class:`ConfigError` unless ``policy`` is one of :data:`POLICIES` or ``annotator:WHO``.

    Example:
        >>> check_policy("latest"); check_policy("annotator:ann@example.org")
        >>> check_policy("newest")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
          ...
        conflict_ie.errors.ConfigError: unknown annotation policy 'newest'; use one of ground_truth, latest, ...
    """
    if isinstance(policy, str) and (policy in POLICIES or (policy.startswith("annotator:") and policy[10:])):
        return
    raise ConfigError(f"unknown annotation policy {policy!r}; use one of {', '.join(POLICIES)} or annotator:WHO")


def annotator_of(annotation: Mapping[str, Any]) -> str | None:
    """The annotator's e-mail when the export is expanded, else their user id, as a string."""
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        return str(who.get("email") or who.get("id"))
    return None if who is None else str(who)


def _annotations(task: Mapping[str, Any], where: str | None, task_id: Any) -> list[tuple[int, Mapping[str, Any]]]:
    """``(index, annotation)`` for every annotation of a task, its structure checked."""
    annotations = task.get("annotations")
    if annotations is None:
        return []
    if not isinstance(annotations, list):
        raise InputError(f"is {json_type(annotations)}, not a list of annotations", source=where, task=task_id,
                         field="annotations", reason="malformed_task")
    out = []
    for i, annotation in enumerate(annotations):
        if not isinstance(annotation, Mapping):
            raise InputError(f"is {json_type(annotation)}, not an annotation object", source=where, task=task_id,
                             field=f"annotations[{i}]", reason="malformed_task")
        for flag in ("was_cancelled", "ground_truth"):
            value = annotation.get(flag)
            if value is not None and not isinstance(value, bool):
                raise InputError(f"is {json_type(value)} ({value!r}), not true or false", source=where, task=task_id,
                                 field=f"annotations[{i}].{flag}", reason="malformed_task")
        out.append((i, annotation))
    return out


def usable_annotations(task: Mapping[str, Any], *, where: str | None = None) -> list[Mapping[str, Any]]:
    """Annotations that may be training data: not cancelled (drafts live elsewhere and are never read).

    A malformed ``annotations`` list raises an :class:`InputError` naming the field.
    """
    return [a for _, a in _annotations(task, where, task_id_of(task, None, where)) if not a.get("was_cancelled")]


def _choose(task: Mapping[str, Any], policy: str, where: str | None,
            task_id: Any) -> tuple[int | None, Mapping[str, Any] | None, str]:
    """``(index, annotation, "")`` for the chosen annotation, else ``(None, None, why)`` (a key of UNUSED)."""
    annotations = _annotations(task, where, task_id)
    candidates = [(i, a) for i, a in annotations if not a.get("was_cancelled")]
    if policy.startswith("annotator:"):
        who = policy.split(":", 1)[1]
        mine = [(i, a) for i, a in candidates if annotator_of(a) == who or str(_user_id(a)) == who]
        if candidates and not mine:
            return None, None, "other_annotators"
        candidates, policy = mine, "latest"
    if not candidates:
        drafts = task.get("drafts")
        why = "cancelled" if annotations else "drafts" if isinstance(drafts, list) and drafts else "unannotated"
        return None, None, why
    if len(candidates) == 1:
        return candidates[0][0], candidates[0][1], ""

    def when(item: tuple[int, Mapping[str, Any]], *names: str):
        i, annotation = item
        for name in names:
            value = annotation.get(name)
            if value is not None and value != "":
                try:
                    return parse_time(value), _id_key(annotation)
                except ValueError as exc:
                    raise InputError(str(exc), source=where, task=task_id, field=f"annotations[{i}].{name}",
                                     reason="malformed_task") from None
        return OLDEST, _id_key(annotation)

    def latest(item):
        return when(item, "updated_at", "created_at")

    if policy == "ground_truth":
        chosen = max([c for c in candidates if c[1].get("ground_truth")] or candidates, key=latest)
    elif policy == "latest":
        chosen = max(candidates, key=latest)
    else:  # "first"
        chosen = min(candidates, key=lambda item: when(item, "created_at"))
    return chosen[0], chosen[1], ""


def _id_key(annotation: Mapping[str, Any]) -> tuple[int, Any]:
    # Ties in time go to the higher id; integer ids compare as numbers (10 after 9), others as strings.
    value = annotation.get("id")
    return (0, value) if isinstance(value, int) and not isinstance(value, bool) else (1, str(value))


def choose_annotation(task: Mapping[str, Any], policy: str = "ground_truth", *,
                      where: str | None = None) -> Mapping[str, Any] | None:
    """Pick the one annotation of a task that becomes the document.

    Policies:
      - ``ground_truth`` (default): the annotation marked ground truth, else the latest updated;
      - ``latest``: the most recently updated (``updated_at``, else ``created_at``);
      - ``first``: the earliest created;
      - ``annotator:WHO``: the latest by that annotator (user id or e-mail), else none.
    Cancelled annotations are never chosen; drafts are never read. Times are compared as times
    (ISO 8601, any UTC offset; a time without one is UTC), so ``10:00+02:00`` is before ``09:00Z``;
    an annotation without a time is the oldest. An unknown policy raises :class:`ConfigError`, a
    time that is not ISO 8601 an :class:`InputError` naming the field.

    Example:
        >>> t = {"annotations": [{"id": 1, "updated_at": "2024-01-02", "result": []},
        ...                      {"id": 2, "updated_at": "2024-01-01", "ground_truth": True, "result": []}]}
        >>> choose_annotation(t)["id"], choose_annotation(t, "latest")["id"]
        (2, 1)
        >>> t = {"annotations": [{"id": 1, "updated_at": "2024-05-01T10:00:00+02:00"},
        ...                      {"id": 2, "updated_at": "2024-05-01T09:00:00Z"}]}
        >>> choose_annotation(t, "latest")["id"]   # 08:00 UTC against 09:00 UTC
        2
    """
    check_policy(policy)
    return _choose(task, policy, where, task_id_of(task, None, where))[1]


def _user_id(annotation: Mapping[str, Any]) -> Any:
    who = annotation.get("completed_by")
    return who.get("id") if isinstance(who, Mapping) else who


def _load_json(source: str | Path | Sequence[Any]) -> tuple[list[Any], str]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        raw = read_text(path)
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", source=str(path)) from None
        except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits; nesting too deep
            raise InputError(f"not JSON that can be read: {exc}"[:300], source=str(path)) from None
        name = str(path)
    else:
        data, name = source, "<tasks>"
    if isinstance(data, Mapping) and "id" in data and "data" in data:
        data = [data]  # a single task, as the task page's JSON view gives it
    if not isinstance(data, list):
        raise InputError(
            f"not a list of tasks (got {json_type(data)}); export the project as JSON", source=name
        )
    for i, task in enumerate(data):
        if not isinstance(task, Mapping):
            raise InputError(f"item {i} is {json_type(task)}, not a task object", source=name, task=f"#{i}",
                             reason="malformed_task")
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
    Tasks without a usable annotation are counted (``no_annotation``, and why in
    ``report.unused``), not turned into empty documents, since an unannotated article is not a
    negative example. An export that gives no document at all is returned as such (the CLI
    refuses it: :meth:`ReadResult.require_documents`).

    Example:
        >>> region = {"id": "a", "type": "labels", "from_name": "label", "to_name": "text",
        ...           "value": {"start": 0, "end": 12, "text": "Wagner Group", "labels": ["ARMED_GROUP"]}}
        >>> tasks = [{"id": 7, "data": {"text": "Wagner Group attacked."},
        ...           "annotations": [{"id": 1, "result": [region]}]}]
        >>> res = read_labelstudio(tasks, LabelSchema.load("conflict"))
        >>> [(s.label, s.start, s.end) for s in res.documents[0].spans]
        [('ARMED_GROUP', 0, 12)]
    """
    check_policy(policy)
    tasks, where = _load_json(source)
    text_field = text_field or (schema.text_field if schema else "text")
    report = ReadReport(n_tasks=len(tasks))
    if is_json_min(tasks, text_field):
        return read_json_min(tasks, schema, text_field=text_field, lenient=lenient, where=where, report=report)
    documents = []
    seen: dict[str, int] = {}
    for index, task in enumerate(tasks):
        try:
            document = _read_task(task, index, seen, schema, text_field=text_field, policy=policy, lenient=lenient,
                                  report=report, where=where)
        except InputError as exc:
            if not lenient:
                raise
            report.add(exc.reason, str(exc))
            continue
        if document is not None:
            documents.append(document)
    report.n_documents = len(documents)
    return ReadResult(documents, report, where)


def _read_task(task: Mapping[str, Any], index: int, seen: dict[str, int], schema: LabelSchema | None, *,
               text_field: str, policy: str, lenient: bool, report: ReadReport, where: str):
    """One task as a Document (None when it has no usable annotation); structural problems raise."""
    task_id = task_id_of(task, index, where)
    key = str(task_id)
    if key in seen:
        raise InputError(f"the task appears twice in the file (items {seen[key]} and {index}); each task is read "
                         "once", source=where, task=task_id, field="id", reason="duplicate_task")
    seen[key] = index
    data = task.get("data")
    if not isinstance(data, Mapping):
        raise InputError(f"'data' is {json_type(data)}, not an object; is this a Label Studio export?",
                         source=where, task=task_id, field="data", reason="malformed_task")
    text = data.get(text_field)
    if not isinstance(text, str):
        problem = (
            f"data has no text field {text_field!r} (fields: {sorted(map(str, data))}); pass text_field=/--text-field"
            if text is None
            else f"data.{text_field} is {json_type(text)}, not a string"
        )
        raise InputError(problem, source=where, task=task_id, field=f"data.{text_field}", reason="missing_text")
    meta = task.get("meta")
    if meta is not None and not isinstance(meta, Mapping):
        raise InputError(f"is {json_type(meta)}, not an object", source=where, task=task_id, field="meta",
                         reason="malformed_task")
    chosen, annotation, why = _choose(task, policy, where, task_id)
    if annotation is None:
        report.unused[why] += 1
        report.add("no_annotation", f"{where}, task {task_id}: no usable annotation under policy {policy!r} "
                                    f"({UNUSED[why]})")
        return None
    # Strings with lone surrogates (JSON "\ud800") cannot be written to the corpus, nor read by a tokenizer.
    bad = lone_surrogate({"data": data, "meta": meta or {}, f"annotations[{chosen}]": annotation})
    if bad is not None:
        raise InputError("holds a lone surrogate (a JSON \\ud800-style escape that is half a character); no file "
                         "or tokenizer can hold it", source=where, task=task_id, field=bad, reason="lone_surrogate")
    provenance = Provenance(
        source=where,
        task_id=str(task_id),
        annotation_id=None if annotation.get("id") is None else str(annotation["id"]),
        annotator=annotator_of(annotation),
        fields={"data": {k: v for k, v in data.items() if k != text_field}, "meta": dict(meta or {})},
    )
    return build_document(str(task_id), text, annotation.get("result"), schema, provenance=provenance,
                          lenient=lenient, report=report, where=where, field=f"annotations[{chosen}].result")


