"""Label Studio result items -> spans and relations, validated.

The layer under :mod:`conflict_ie.labelstudio` (full JSON export) and
:mod:`conflict_ie.labelstudio_json_min` (JSON_MIN): one annotation's ``result``
list becomes a :class:`~conflict_ie.documents.Document`; every problem is
raised (strict) or counted by reason in a :class:`ReadReport` (lenient), and
every repair is counted there too: offsets written in UTF-16 code units by older
Label Studio versions, and (lenient only) white space trimmed from a span's edges.
A region is counted once, whatever else is wrong with it. ``conflict_ie.labelstudio``
re-exports the public names.

What is refused (strict) or skipped (lenient), beyond the schema's own checks: a result
that is not an object; a ``type`` that is missing or not Label Studio's spelling
(``"Labels"``); offsets that are not whole numbers; label or choice lists that are not
lists of strings; two different choices of one attribute for one region; spans that are
only white space, or (strict) begin or end with it; relations whose ``direction`` is not
``left``, ``right`` or ``bi``, and relations from a region to itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

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
    trimmed,
)
from conflict_ie.errors import InputError
from conflict_ie.labelstudio_report import ReadReport, ReadResult  # noqa: F401  (re-exported)
from conflict_ie.labelstudio_values import (
    is_id,
    json_type,
    not_an_offset,
    one_label,
    result_kind,
    unknown_kind,
    whole_number,
)
from conflict_ie.schema import LabelSchema

DIRECTIONS = ("right", "left", "bi")


def _region_id(task_id: Any, index: int, item: Mapping[str, Any]) -> str | None:
    # Label Studio always sets ids; exports made by other tools may not. Derive a stable one.
    # None: the id is there but is no id (a list, a boolean ...); the caller refuses the item.
    rid = item.get("id")
    if rid is None or rid == "":
        return hashlib.sha1(f"{task_id}:{index}".encode()).hexdigest()[:10]
    return str(rid) if is_id(rid) else None


def utf16_to_code_points(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Read ``start``/``end`` as UTF-16 code-unit offsets into ``text``; return them as code-point offsets.

    ``None`` when either offset lies outside the text or between the two halves of a surrogate
    pair (no UTF-16 writer would put a region boundary there).

    Example:
        >>> text = "\N{GRINNING FACE} Kyiv"   # the emoji is one code point but two UTF-16 units
        >>> utf16_to_code_points(text, 3, 7), text[2:6]
        ((2, 6), 'Kyiv')
        >>> utf16_to_code_points(text, 1, 7) is None   # inside the emoji
        True
    """
    start_cp = end_cp = None
    units = 0
    for index, char in enumerate(text):
        if units == start:
            start_cp = index
        if units == end:
            end_cp = index
        units += 2 if ord(char) > 0xFFFF else 1
    if units == start:
        start_cp = len(text)
    if units == end:
        end_cp = len(text)
    if start_cp is None or end_cp is None:
        return None
    return start_cp, end_cp


def _utf16_repair(text: str, start: int, end: int, given: Any) -> tuple[int, int] | None:
    """The code-point offsets of a region whose ``start``/``end`` were written in UTF-16 code units.

    Older Label Studio front ends counted offsets in UTF-16 code units (JavaScript string indices),
    so every character outside the BMP (emoji, some CJK) before a boundary shifts it by one. Only
    a repair that makes the slice equal ``value.text`` (white space normalised as for the mismatch
    check) is accepted: anything else is a real mismatch and stays one.
    """
    if not isinstance(given, str) or not normalize_ws(given):
        return None
    if not any(ord(c) > 0xFFFF for c in text):
        return None  # without astral characters both readings are the same
    if 0 <= start < end <= len(text) and normalize_ws(text[start:end]) == normalize_ws(given):
        return None  # the code-point reading already agrees
    repaired = utf16_to_code_points(text, start, end)
    if repaired is None or repaired[0] >= repaired[1]:
        return None
    if normalize_ws(text[repaired[0] : repaired[1]]) != normalize_ws(given):
        return None
    return repaired


def parse_results(
    results: Sequence[Any],
    text: str,
    schema: LabelSchema | None,
    *,
    task_id: Any = None,
    repairs: list[Problem] | None = None,
    lenient: bool = False,
    field: str | Sequence[str] = "result",
) -> tuple[list[Span], list[Relation], list[Problem], list[str]]:
    """Turn one annotation's ``result`` list into spans and relations, plus the problems found.

    Returns ``(spans, relations, problems, notes)``; nothing is dropped here, the caller decides.
    Every problem names the region and the ``field`` (``result[3].value.start``) at fault; ``field``
    is the name of the list, or one name per item (JSON_MIN's regions come from several fields).
    Regions whose offsets were written in UTF-16 code units are read as code points and kept; with
    ``lenient``, a span with white space at an edge is trimmed and kept. Each such repair of a kept
    span is appended to ``repairs`` (when given) as a :class:`Problem` (``utf16_offsets_repaired``,
    ``white_space_trimmed``).

    Example:
        >>> text = "\N{FIRE} Kyiv"
        >>> item = {"id": "k", "type": "labels",
        ...         "value": {"start": 3, "end": 7, "text": "Kyiv", "labels": ["LOCATION"]}}
        >>> fixed = []
        >>> spans, _, problems, _ = parse_results([item], text, None, repairs=fixed)
        >>> (spans[0].start, spans[0].end), problems, fixed[0].reason
        ((2, 6), [], 'utf16_offsets_repaired')
        >>> bad = {"id": "x", "type": "Labels", "value": {"start": 2, "end": 6, "labels": ["LOCATION"]}}
        >>> [(p.reason, p.region, p.field) for p in parse_results([bad], text, None)[2]]
        [('unknown_result_type', 'x', 'result[0].type')]
    """
    problems: list[Problem] = []
    notes: list[str] = []
    raw_spans: dict[str, dict[str, Any]] = {}
    attrs: dict[str, dict[str, str]] = {}
    refused: set[str] = set()  # regions refused before they became spans: their choices are not orphans
    conflicted: set[str] = set()  # regions with two different choices of one attribute
    relations: list[Relation] = []

    def problem(reason: str, region: str | None, message: str, at: str, relation: bool = False) -> None:
        problems.append(Problem(reason, region, message, field=at, relation=relation))

    for index, item in enumerate(results):
        at = f"{field}[{index}]" if isinstance(field, str) else field[index]
        if not isinstance(item, Mapping):
            problem("malformed_result", f"#{index}", f"result is {json_type(item)}, not a result object", at)
            continue
        kind = item.get("type")
        what = result_kind(kind)
        if what == "relation":
            rel = _relation(item, schema, at, index, problem)
            if rel is not None:
                relations.append(rel)
            continue
        if what == "choices" and (item.get("id") is None or item.get("id") == ""):
            notes.append(f"task-level choice {item.get('from_name')!r} (no region id) is not a region attribute; "
                         "ignored")
            continue
        rid = _region_id(task_id, index, item)
        if rid is None:
            problem("bad_region_id", f"#{index}", f"id is {json_type(item['id'])} ({item['id']!r}), not a string "
                    "or an integer", f"{at}.id")
            continue
        if what == "other":
            notes.append(f"region {rid}: result of type {kind!r} ({item.get('from_name')!r}) is not used")
            continue
        if what == "unknown":
            problem("unknown_result_type", rid, unknown_kind(kind), f"{at}.type")
            refused.add(rid)
            continue
        value = item.get("value")
        if not isinstance(value, Mapping):
            problem("malformed_value", rid, f"value is {json_type(value)}, not an object", f"{at}.value")
            refused.add(rid)
            continue
        if what == "choices":
            if "start" not in value:
                notes.append(f"task-level choice {item.get('from_name')!r}={value.get('choices')!r} is not a "
                             "region attribute; ignored")
                continue
            name = item.get("from_name")
            choice, why = one_label(value.get("choices"), "value.choices", "choices")
            if not isinstance(name, str) or not name:
                problem("bad_from_name", rid, f"per-region choice's from_name is {json_type(name)}, not the name "
                        "of an attribute", f"{at}.from_name")
            elif why is not None:
                reason = "attribute_choice_count" if why.startswith("has ") else "bad_choices"
                problem(reason, rid, f"{name} {why}", f"{at}.value.choices")
            elif attrs.get(rid, {}).get(name, choice) != choice:
                problem("conflicting_choices", rid, f"two {name} choices for one region: "
                        f"{attrs[rid][name]!r} and {choice!r}", f"{at}.value.choices")
                conflicted.add(rid)
            else:
                attrs.setdefault(rid, {})[name] = choice
            continue
        # A labelled region.
        if "start" not in value or "end" not in value:
            problem("missing_offsets", rid, "region has no value.start/value.end", f"{at}.value")
            refused.add(rid)
            continue
        start, end = whole_number(value["start"]), whole_number(value["end"])
        if start is None or end is None:
            key = "start" if start is None else "end"
            problem("bad_offset", rid, f"value.{key} is {not_an_offset(value[key])}", f"{at}.value.{key}")
            refused.add(rid)
            continue
        labels_key = kind if kind in value else "labels"
        label, why = one_label(value.get(labels_key), f"value.{labels_key}")
        given = value.get("text")
        if why is not None:
            reason = "region_label_count" if why.startswith("has ") else "bad_labels"
            problem(reason, rid, f"region {why}" if why.startswith("has ") else why, f"{at}.value.{labels_key}")
            refused.add(rid)
        elif given is not None and not isinstance(given, str):
            problem("bad_value_text", rid, f"value.text is {json_type(given)}, not a string", f"{at}.value.text")
            refused.add(rid)
        elif rid in raw_spans:
            problem("duplicate_region", rid, "two label results share this region id", f"{at}.id")
        else:
            raw_spans[rid] = {"start": start, "end": end, "label": label, "text": given, "at": at}

    spans = []
    for rid, raw in raw_spans.items():
        if rid in conflicted:
            continue  # already a problem of this region
        span, span_problems, pending = _make_span(rid, raw, text, schema, attrs.pop(rid, {}), lenient)
        if span_problems:
            problems += span_problems
        else:
            spans.append(span)
            if repairs is not None:
                repairs += pending
    for rid in attrs:
        if rid not in refused and rid not in conflicted and rid not in raw_spans:
            problem("orphan_attribute", rid, f"per-region choice {attrs[rid]} has no labelled region",
                    field if isinstance(field, str) else None)
    return spans, relations, problems, notes


def _make_span(rid: str, raw: Mapping[str, Any], text: str, schema: LabelSchema | None, attributes: dict[str, str],
               lenient: bool) -> tuple[Span, list[Problem], list[Problem]]:
    """One region's span, its problems, and the repairs made to it (reported only if it is kept)."""
    start, end, given, at = raw["start"], raw["end"], raw["text"], f"{raw['at']}.value"
    pending: list[Problem] = []
    # Before the range check: UTF-16 offsets near the end of a text can lie past its last code point.
    repaired = _utf16_repair(text, start, end, given)
    if repaired is not None:
        pending.append(Problem(
            "utf16_offsets_repaired", rid,
            f"offsets {start}-{end} are UTF-16 code units (an older Label Studio wrote them); "
            f"read as code points {repaired[0]}-{repaired[1]}, {text[repaired[0]:repaired[1]]!r}", field=at))
        start, end = repaired
    span = Span(rid, start, end, str(raw["label"]), attributes)
    problems = [replace(p, field=at) for p in check_span(text, span, schema)]
    sliced = text[start:end]
    if not problems and given is not None and normalize_ws(sliced) != normalize_ws(given):
        problems.append(Problem(
            "text_mismatch", rid,
            f"value.text {given!r} differs from the text at {start}-{end}, {sliced!r} "
            "(was the task text edited after annotation?)", field=f"{at}.text"))
    if not problems:
        new_start, new_end = trimmed(text, start, end)
        if new_start == new_end:
            problems.append(Problem("white_space_span", rid, f"span {start}-{end} {sliced!r} is only white space",
                                    field=at))
        elif (new_start, new_end) != (start, end) and lenient:
            pending.append(Problem(
                "white_space_trimmed", rid,
                f"span {start}-{end} {sliced!r} trimmed to {new_start}-{new_end} {text[new_start:new_end]!r}",
                field=at))
            span = replace(span, start=new_start, end=new_end)
        elif (new_start, new_end) != (start, end):
            problems.append(Problem(
                "white_space_edge", rid,
                f"span {start}-{end} {sliced!r} begins or ends with white space, which the annotation guidelines "
                f"forbid; it should be {new_start}-{new_end} {text[new_start:new_end]!r} (--lenient trims it)",
                field=at))
    if not problems and schema is not None:
        for attr in schema.attributes_for(span.label):
            if attr.required and attr.name not in span.attributes:
                problems.append(Problem("missing_attribute", rid, f"{span.label} region has no {attr.name} choice",
                                        field=at))
    return span, problems, pending


def _relation(item: Mapping[str, Any], schema: LabelSchema | None, at: str, index: int,
              problem: Callable[..., None]) -> Relation | None:
    """One relation result as a :class:`Relation` (head to tail), or None after reporting its problem."""
    for key in ("from_id", "to_id"):
        if not is_id(item.get(key)):
            region = str(item["from_id"]) if is_id(item.get("from_id")) else f"#{index}"
            problem("bad_relation_endpoint", region, f"relation's {key} is {json_type(item.get(key))}, not a "
                    "region id", f"{at}.{key}", True)
            return None
    head, tail = str(item["from_id"]), str(item["to_id"])
    label, why = one_label(item.get("labels", []), "labels")
    if why is not None:
        reason = "relation_label_count" if why.startswith("has ") else "bad_relation_labels"
        problem(reason, head, f"relation {head} -> {tail} {why}" if why.startswith("has ")
                else f"relation {head} -> {tail}: {why}", f"{at}.labels", True)
        return None
    # Label Studio always writes a direction; an item without one is read with Label Studio's default.
    direction = item.get("direction", "right")
    if not isinstance(direction, str) or direction not in DIRECTIONS:
        problem("bad_direction", head, f"relation {label} {head} -> {tail}: direction {direction!r} is not "
                "'right', 'left' or 'bi' (reading it as 'right' could reverse the relation)", f"{at}.direction", True)
        return None
    if head == tail:
        problem("self_relation", head, f"relation {label} goes from region {head} to itself", at, True)
        return None
    if direction == "left":
        head, tail = tail, head
    elif direction == "bi":
        rel = schema.relation(label) if schema else None
        if rel is None or not rel.symmetric:
            problem("bidirectional_relation", head, f"relation {label} {head} <-> {tail} is drawn bidirectional, "
                    f"but the schema declares {label} directed; redraw it with an arrow", f"{at}.direction", True)
            return None
    return Relation(head, tail, label)


def build_document(
    doc_id: str,
    text: str,
    results: Sequence[Any] | None,
    schema: LabelSchema | None,
    *,
    provenance: Provenance,
    lenient: bool,
    report: ReadReport,
    where: str,
    field: str | Sequence[str] = "result",
) -> Document:
    """Validate one annotation's results and make the Document (strict raises, lenient counts).

    In lenient mode each region is counted once, under its first problem; its other problems join
    that message. ``results`` that is not a list raises in both modes (there is nothing to skip).
    """
    if results is None:
        results = []
    if not isinstance(results, (list, tuple)):
        raise InputError(f"is {json_type(results)}, not a list of results", source=where, task=doc_id,
                         field=field if isinstance(field, str) else None, reason="malformed_result_list")
    counted: dict[str, int] = {}  # region -> index of its message

    def fail(problem: Problem) -> None:
        if not lenient:
            raise InputError(problem.message, source=where, task=doc_id, region=problem.region, reason=problem.reason,
                             field=problem.field)
        key = None if problem.relation else (problem.field if problem.reason == "duplicate_region" else problem.region)
        if key is not None and key in counted:
            report.messages[counted[key]] += f"; also: {problem.message}"
            return
        if key is not None:
            counted[key] = len(report.messages)
        at = f" (field {problem.field})" if problem.field else ""
        report.add(problem.reason, f"{where}, task {doc_id}, region {problem.region}: {problem.message}{at}")

    repairs: list[Problem] = []
    spans, relations, problems, notes = parse_results(results, text, schema, task_id=doc_id, repairs=repairs,
                                                      lenient=lenient, field=field)
    report.warnings += [f"{where}, task {doc_id}, {note}" for note in notes]
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
    # A repair is not an error, in strict mode too: the region is kept, counted and named (if it is kept).
    for problem in repairs:
        if problem.region not in dropped:
            report.repair(problem.reason, f"{where}, task {doc_id}, region {problem.region}: {problem.message}")
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
