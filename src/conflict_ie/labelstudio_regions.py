"""Label Studio result items -> spans and relations, validated, and the report of what reading did.

The layer under :mod:`conflict_ie.labelstudio` (full JSON export) and
:mod:`conflict_ie.labelstudio_json_min` (JSON_MIN): one annotation's ``result``
list becomes a :class:`~conflict_ie.documents.Document`; every problem is
raised (strict) or counted by reason in a :class:`ReadReport` (lenient), and
every repair (offsets written in UTF-16 code units by older Label Studio
versions) is counted there too. ``conflict_ie.labelstudio`` re-exports the
public names.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

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


@dataclass
class ReadReport:
    """What reading skipped or noticed, so that nothing is lost silently."""

    n_tasks: int = 0
    n_documents: int = 0
    skipped: Counter = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Regions kept after a repair (e.g. ``utf16_offsets_repaired``), by reason; each also has a warning.
    repaired: Counter = field(default_factory=Counter)

    def add(self, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        self.messages.append(message)

    def repair(self, reason: str, message: str) -> None:
        """Count a region that was kept after fixing it, and say so in the warnings.

        Example:
            >>> r = ReadReport(); r.repair("utf16_offsets_repaired", "task 3, region a: offsets 2-6 read as 1-5")
            >>> r.repaired["utf16_offsets_repaired"], r.warnings[0].startswith("task 3")
            (1, True)
        """
        self.repaired[reason] += 1
        self.warnings.append(message)

    def merge(self, other: "ReadReport") -> None:
        self.n_tasks += other.n_tasks
        self.n_documents += other.n_documents
        self.skipped.update(other.skipped)
        self.repaired.update(other.repaired)
        self.messages += other.messages
        self.warnings += other.warnings

    def summary(self) -> str:
        """One paragraph for the terminal."""
        lines = [f"read {self.n_documents} document(s) from {self.n_tasks} task(s)"]
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())))
        if self.repaired:
            lines.append("repaired: " + ", ".join(f"{k}={v}" for k, v in sorted(self.repaired.items())))
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


def _region_id(task_id: Any, index: int, item: Mapping[str, Any]) -> str:
    # Label Studio always sets ids; exports made by other tools may not. Derive a stable one.
    if item.get("id"):
        return str(item["id"])
    return hashlib.sha1(f"{task_id}:{index}".encode()).hexdigest()[:10]


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
    results: Sequence[Mapping[str, Any]],
    text: str,
    schema: LabelSchema | None,
    *,
    task_id: Any = None,
    repairs: list[Problem] | None = None,
) -> tuple[list[Span], list[Relation], list[Problem], list[str]]:
    """Turn one annotation's ``result`` list into spans and relations, plus the problems found.

    Returns ``(spans, relations, problems, notes)``; nothing is dropped here, the caller decides.
    Regions whose offsets were written in UTF-16 code units are read as code points and kept; each
    such repair is appended to ``repairs`` (when given) as a :class:`Problem` with reason
    ``utf16_offsets_repaired``.

    Example:
        >>> text = "\N{FIRE} Kyiv"
        >>> item = {"id": "k", "type": "labels",
        ...         "value": {"start": 3, "end": 7, "text": "Kyiv", "labels": ["LOCATION"]}}
        >>> fixed = []
        >>> spans, _, problems, _ = parse_results([item], text, None, repairs=fixed)
        >>> (spans[0].start, spans[0].end), problems, fixed[0].reason
        ((2, 6), [], 'utf16_offsets_repaired')
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
        # Before the range check: UTF-16 offsets near the end of a text can lie past its last code point.
        repaired = _utf16_repair(text, start, end, value.get("text"))
        if repaired is not None:
            if repairs is not None:
                repairs.append(
                    Problem(
                        "utf16_offsets_repaired",
                        rid,
                        f"offsets {start}-{end} are UTF-16 code units (an older Label Studio wrote them); "
                        f"read as code points {repaired[0]}-{repaired[1]}, {text[repaired[0]:repaired[1]]!r}",
                    )
                )
            start, end = repaired
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

    repairs: list[Problem] = []
    spans, relations, problems, notes = parse_results(results, text, schema, task_id=doc_id, repairs=repairs)
    report.warnings += notes
    # A repair is not an error, in strict mode too: the region is kept, counted and named.
    for problem in repairs:
        report.repair(problem.reason, f"{where}, task {doc_id}, region {problem.region}: {problem.message}")
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
