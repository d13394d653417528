"""Documents, spans and relations: plain frozen dataclasses, and their validation.

Offsets are Python code-point offsets into ``Document.text``, end exclusive,
as Label Studio exports them. Nothing here imports torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from conflict_ie.schema import LabelSchema


@dataclass(frozen=True)
class Span:
    """A labelled character span; ``attributes`` holds per-region choices.

    Example:
        >>> Span("r1", 0, 6, "ARMED_GROUP").length
        6
    """

    id: str
    start: int
    end: int
    label: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return self.end - self.start

    def overlaps(self, other: "Span") -> bool:
        """True when the two spans share at least one character."""
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class Relation:
    """A directed relation between two spans of the same document, by span id."""

    head: str
    tail: str
    label: str


@dataclass(frozen=True)
class Provenance:
    """Where a document came from: the Label Studio task and annotation, or a file."""

    source: str = ""
    task_id: str | None = None
    annotation_id: str | None = None
    annotator: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Document:
    """A text with its spans and relations.

    Example:
        >>> d = Document("1", "Wagner Group fighters", (Span("a", 0, 12, "ARMED_GROUP"),))
        >>> d.span_text(d.spans[0])
        'Wagner Group'
    """

    id: str
    text: str
    spans: tuple[Span, ...] = ()
    relations: tuple[Relation, ...] = ()
    provenance: Provenance = field(default_factory=Provenance)

    def span_text(self, span: Span) -> str:
        return self.text[span.start : span.end]

    def span_by_id(self) -> dict[str, Span]:
        return {s.id: s for s in self.spans}

    def meta(self) -> dict[str, Any]:
        """Provenance as a plain dict (stored as a JSON string in the corpus)."""
        return asdict(self.provenance)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the corpus row shape, with ``meta`` as a dict).

        Example:
            >>> Document("1", "x").to_json()["spans"]
            []
        """
        return {
            "id": self.id,
            "text": self.text,
            "spans": [
                {"id": s.id, "start": s.start, "end": s.end, "label": s.label, "attributes": dict(s.attributes)}
                for s in self.spans
            ],
            "relations": [{"head": r.head, "tail": r.tail, "label": r.label} for r in self.relations],
            "meta": self.meta(),
        }

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> "Document":
        """Inverse of :meth:`to_json`; ``meta`` may be a dict or a JSON string."""
        meta = row.get("meta") or {}
        if isinstance(meta, str):
            meta = json.loads(meta)
        return cls(
            id=str(row["id"]),
            text=row["text"],
            spans=tuple(
                Span(str(s["id"]), int(s["start"]), int(s["end"]), s["label"], dict(s.get("attributes") or {}))
                for s in row.get("spans") or ()
            ),
            relations=tuple(Relation(r["head"], r["tail"], r["label"]) for r in row.get("relations") or ()),
            provenance=Provenance(**meta) if meta else Provenance(),
        )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a region or relation; ``reason`` is a short key used in counts.

    ``field`` names the part of the item at fault where known (``result[3].value.start``);
    ``relation`` is true for a relation's problem (``region`` is then its head), so that a region
    and a relation that starts at it are counted apart.
    """

    reason: str
    region: str | None
    message: str
    field: str | None = None
    relation: bool = False


#: Characters that may not begin or end a span: white space (``str.isspace``: spaces, tabs, new lines,
#: NBSP, U+2028 ...) and the zero-width spaces, which are invisible at a span's edge just the same.
#: U+FEFF is among them: a task text may begin with it (a byte-order mark kept by the import), and the
#: text is kept as is so that Label Studio's offsets stay right, but no span may begin with it.
ZERO_WIDTH = "\u200b\u2060\ufeff\u180e"


def is_blank(char: str) -> bool:
    """True for a character that may not begin or end a span.

    Example:
        >>> [is_blank(c) for c in (" ", "\\u00a0", "\\ufeff", "a", "-")]
        [True, True, True, False, False]
    """
    return char.isspace() or char in ZERO_WIDTH


def trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """``start``/``end`` moved inwards past blank characters (``start == end`` when all are blank).

    Example:
        >>> text = " Kyiv\\u00a0"
        >>> trimmed(text, 0, 6), trimmed("   ", 0, 3)
        ((1, 5), (3, 3))
    """
    while start < end and is_blank(text[start]):
        start += 1
    while end > start and is_blank(text[end - 1]):
        end -= 1
    return start, end


def normalize_ws(text: str) -> str:
    """Collapse runs of white space, as the Label Studio UI does in ``value.text``."""
    return " ".join(text.split())


def check_span(text: str, span: Span, schema: LabelSchema | None) -> Iterator[Problem]:
    """Yield what is wrong with one span on its own (offsets, label, attributes).

    Example:
        >>> [p.reason for p in check_span("abc", Span("r", 2, 9, "X"), None)]
        ['offsets_out_of_range']
    """
    if not (0 <= span.start <= len(text) and 0 <= span.end <= len(text)):
        yield Problem(
            "offsets_out_of_range",
            span.id,
            f"offsets {span.start}-{span.end} lie outside the text (length {len(text)})",
        )
        return
    if span.start >= span.end:
        yield Problem("empty_span", span.id, f"start {span.start} >= end {span.end}")
        return
    if schema is None:
        return
    if span.label not in schema.entity_labels:
        yield Problem(
            "unknown_label",
            span.id,
            f"label {span.label!r} is not in schema {schema.name!r}; known labels: {list(schema.entity_labels)}",
        )
        return
    allowed = {a.name: a for a in schema.attributes_for(span.label)}
    for name, value in span.attributes.items():
        attr = allowed.get(name)
        if attr is None:
            yield Problem(
                "unknown_attribute",
                span.id,
                f"attribute {name!r} does not apply to {span.label}; allowed: {sorted(allowed)}",
            )
        elif value not in attr.choices:
            yield Problem(
                "unknown_attribute_choice",
                span.id,
                f"{name}={value!r} is not a choice of the schema; choices: {list(attr.choices)}",
            )


def find_overlaps(spans: Iterable[Span]) -> Iterator[tuple[Span, Span]]:
    """Yield pairs of overlapping spans (each pair once, in text order).

    Example:
        >>> a, b = Span("a", 0, 5, "X"), Span("b", 3, 8, "X")
        >>> [(x.id, y.id) for x, y in find_overlaps([b, a])]
        [('a', 'b')]
    """
    ordered = sorted(spans, key=lambda s: (s.start, s.end, s.id))
    active: list[Span] = []
    for span in ordered:
        active = [a for a in active if a.end > span.start]
        for a in active:
            yield a, span
        active.append(span)


def check_relation(relation: Relation, spans: Mapping[str, Span], schema: LabelSchema | None) -> Iterator[Problem]:
    """Yield what is wrong with a relation: missing endpoints, unknown label, forbidden types."""
    for end in (relation.head, relation.tail):
        if end not in spans:
            yield Problem(
                "unknown_endpoint",
                end,
                f"relation {relation.label} {relation.head} -> {relation.tail}: region {end!r} does not exist "
                "(or was skipped)",
                relation=True,
            )
            return
    if schema is None:
        return
    if schema.relation(relation.label) is None:
        yield Problem(
            "unknown_relation_label",
            relation.head,
            f"relation label {relation.label!r} is not in the schema; known: {list(schema.relation_labels)}",
            relation=True,
        )
        return
    head, tail = spans[relation.head], spans[relation.tail]
    if not schema.allows(relation.label, head.label, tail.label):
        yield Problem(
            "forbidden_relation_pair",
            relation.head,
            f"relation {relation.label} from {head.label} ({relation.head}) to {tail.label} ({relation.tail}) "
            f"is not allowed; allowed pairs: {[list(p) for p in schema.relation(relation.label).pairs]}",
            relation=True,
        )
