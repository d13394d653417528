#!/usr/bin/env python
"""Convert re3d parts (mongoexport JSON lines) into one Label Studio full JSON export.

    python benchmarks/re3d/convert_re3d.py ../shared/data/re3d --out /tmp/re3d-export.json
    python benchmarks/re3d/convert_re3d.py ../shared/data/re3d/centcom ../shared/data/re3d/wikipedia --out x.json
    python benchmarks/re3d/convert_re3d.py ../shared/data/re3d/centcom --documents ID1,ID2 --out two.json
    python benchmarks/re3d/convert_re3d.py ../shared/data/re3d --print-pairs     # the relation pairs for the schema

A RE3D_DIR is either a part (a folder holding ``documents.json``, ``entities.json`` and
``relations.json``, plus ``LICENSE``/``ATTRIBUTION``) or a folder of parts (every sub-folder
that holds a ``documents.json``). The format is described in ``../shared/data/README.md``.

Output: one task per document, ids 1..N, ordered by part name then re3d document id;
``data = {text, title}``, ``meta = {source_name, source_url, licence, part, re3d_document_id}``
and one ground-truth annotation with the spans and relations, written by
:func:`conflict_ie.labelstudio.documents_to_tasks` so that its shape is the project's own.
After writing, the export is read back with the package's strict reader
(:func:`conflict_ie.labelstudio.read_labelstudio`) and the script fails if that raises.

Rules. Every entity and relation that goes in is either kept or dropped for exactly one
reason; the summary printed on stderr counts them (``in = kept + dropped``).

Entities, checked in this order (the first rule that drops an entity names the reason):

1. ``type_not_in_schema``: the re3d type is not an entity label of the schema -> dropped.
2. ``below_min_confidence``: confidence < ``--min-confidence`` -> dropped (default 0: none;
   re3d's confidence-0 entities include rejected suggestions but also real mentions, so
   filtering is a choice left to the caller).
3. Offsets against ``value``: kept as they are when ``text[begin:end]`` equals ``value``, or
   equals it after normalisation (white-space runs collapsed; all quote marks and primes,
   single or double, straight or curly, compared as one; counted as
   ``value_matched_after_normalisation``). Otherwise ``value`` is
   searched for (with the same normalisation) at most ``WINDOW`` = 20 characters from
   ``begin``; the nearest occurrence wins, ties go to the earlier one (``reanchored``).
   Otherwise -> dropped as ``unresolvable_offsets``.
4. Leading/trailing white space is trimmed off the span (``trimmed``); a span that is only
   white space -> dropped as ``whitespace_only``.
5. ``duplicate``: same (start, end, type) as an entity already seen (after 3-4) -> dropped;
   the one kept is the one with the highest confidence, then the first in the file.
6. ``overlap``: the project's schema has no nesting, so overlapping spans are resolved
   greedily. Spans are ranked by: annotator support (confidence > 0 beats confidence 0),
   then length (longer wins), then confidence (higher wins), then ``TYPE_PRIORITY`` (earlier
   wins), then position (earlier wins). Each span, best first, is kept unless it overlaps one
   already kept; the summary counts drops per (kept type, dropped type).
   Why support comes first: re3d's confidence-0 entities include fragments such as a word
   tail glued to the next word; ranking by length alone would let such a fragment beat the
   confirmed entity it crosses, and then the relations on the real entity would be lost.

Relations, checked in this order:

1. ``relation_type_not_in_schema`` -> dropped.
2. ``self_relation``: source offsets equal target offsets -> dropped.
3. Each endpoint (source first) is looked up by its offsets. It matches the kept span whose
   offsets equal the endpoint's offsets, or the offsets that an entity at the endpoint's
   offsets was moved to by rules 3-4 (re-anchoring, trimming). If no kept span matches:
   ``endpoint_dropped_by_overlap_resolution`` when an entity there was dropped by rule 6
   (directly, or as a duplicate of one that was), ``endpoint_dropped_by_entity_checks``
   when the entities there were dropped by rules 1-4, else ``endpoint_not_an_entity``.
   Relations are NOT moved to the span that won an overlap: a relation on "Ruritanian" inside
   "Ruritanian army" means something else on the whole span (or becomes a self-relation).
   re3d endpoints carry no type, so where two types were annotated on the same offsets the
   relation goes to the one that survived rule 6 (that is an exact offset match, not a move).
4. ``self_relation``: both endpoints resolve to the same span -> dropped.
5. ``type_pair_not_in_schema``: the schema does not allow the (source, target) labels -> dropped
   (not checked with ``--print-pairs``, which lists the pairs that occur).
6. ``duplicate_relation``: same source span, target span and type as a kept one -> dropped.

Also counted (nothing dropped): endpoints whose relation-side ``source``/``target`` string does
not match the text at its offsets, kept span pairs that carry more than one relation type
(the export keeps all of them; note that a trainer keyed on the span pair sees only one), and
kept entities whose re3d confidence is 0 (``entities_kept_with_confidence_0``: those that overlap
no supported entity). In the four parts here that is 98 of 2,738 kept entities; read by eye,
about half are not entities at all (a word inside another, "the camp" of "the campaign"; common
words such as "hope" as Person) and the rest are real mentions ("President Obama", "Mosul"),
so ``--min-confidence`` would drop both and stays a choice left to the caller.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from conflict_ie.documents import Document, Provenance, Relation, Span
from conflict_ie.errors import ConfigError, InputError
from conflict_ie.labelstudio import documents_to_tasks, read_labelstudio
from conflict_ie.schema import LabelSchema

#: re3d's own label schema; it lives beside this script (the package does not ship it).
DEFAULT_SCHEMA = Path(__file__).resolve().parent / "re3d-schema.yaml"
PART_FILES = ("documents.json", "entities.json", "relations.json")

#: How far (in characters, from ``begin``) a value that does not sit at its offsets is searched for.
WINDOW = 20

#: Overlap tie-break after support, length and confidence: earlier wins. Specific, rarely
#: ambiguous types first; the broad types that re3d most often puts on the same words last
#: (a country is often both Organisation and Location: the actor reading is kept).
TYPE_PRIORITY = (
    "Coordinate",
    "CommsIdentifier",
    "Frequency",
    "Money",
    "DocumentReference",
    "Weapon",
    "MilitaryPlatform",
    "Vehicle",
    "Person",
    "Temporal",
    "Quantity",
    "Nationality",
    "Organisation",
    "Location",
)

# Quote marks and primes, single or double, straight or curly, compare as one character: re3d
# values sometimes spell a quote differently from the text (curly double in the text, straight
# single in the value), and no two values in a window differ by quote style alone.
_QUOTE_CHARS = "'\"`\u00b4\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2032\u2033"
_QUOTES = str.maketrans({c: '"' for c in _QUOTE_CHARS})

ENTITY_DROP_REASONS = (
    "unknown_document",
    "type_not_in_schema",
    "below_min_confidence",
    "unresolvable_offsets",
    "whitespace_only",
    "duplicate",
    "overlap",
)
RELATION_DROP_REASONS = (
    "unknown_document",
    "relation_type_not_in_schema",
    "self_relation",
    "endpoint_not_an_entity",
    "endpoint_dropped_by_entity_checks",
    "endpoint_dropped_by_overlap_resolution",
    "type_pair_not_in_schema",
    "duplicate_relation",
)


# ----------------------------------------------------------------------------- small helpers
def normalise(text: str) -> str:
    """White space collapsed and every quote mark folded to ``"``, for comparing a span with its value.

    Example:
        >>> normalise("  the \\u201cred\\u201d\\n house ") == normalise("the 'red' house")
        True
    """
    return " ".join(text.translate(_QUOTES).split())


def value_pattern(value: str) -> re.Pattern[str] | None:
    """A regex that finds ``value`` in a text up to :func:`normalise` (None for a blank value).

    Example:
        >>> value_pattern("the  \\u2018A\\u2019 team").search("see the 'A'\\nteam").group(0)
        "the 'A'\\nteam"
    """
    words = value.split()
    if not words:
        return None

    def char(c: str) -> str:
        return "[" + re.escape(_QUOTE_CHARS) + "]" if c in _QUOTE_CHARS else re.escape(c)

    return re.compile(r"\s+".join("".join(char(c) for c in w) for w in words))


def anchor(text: str, begin: int, end: int, value: str, window: int = WINDOW) -> tuple[int, int, str] | None:
    """Check offsets against the value; return ``(start, end, how)`` or None when unresolvable.

    ``how`` is ``exact``, ``normalised`` (same text up to :func:`normalise`) or ``reanchored``
    (the nearest occurrence of the value at most ``window`` characters from ``begin``).

    Example:
        >>> anchor("Troops left Mosul today.", 12, 17, "Mosul")
        (12, 17, 'exact')
        >>> anchor("Troops left Mosul today.", 10, 15, "Mosul")
        (12, 17, 'reanchored')
        >>> anchor("Troops left Mosul today.", 10, 15, "Raqqa") is None
        True
    """
    if 0 <= begin < end <= len(text):
        piece = text[begin:end]
        if piece == value:
            return begin, end, "exact"
        if normalise(piece) and normalise(piece) == normalise(value):
            return begin, end, "normalised"
    pattern = value_pattern(value)
    if pattern is None:
        return None
    best = None
    # A lookahead finds overlapping occurrences too; texts are a few KB, so scanning all is cheap.
    for m in re.finditer(f"(?=({pattern.pattern}))", text):
        distance = abs(m.start() - begin)
        if distance <= window and (best is None or distance < best[0]):
            best = (distance, m.start(), m.start() + len(m.group(1)))
    if best is None:
        return None
    return best[1], best[2], "reanchored"


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Offsets without leading/trailing white space (``start == end`` when only white space).

    Example:
        >>> trim("a  big ship ", 1, 12)
        (3, 11)
    """
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def detect_licence(part_dir: Path) -> str:
    """A short licence name read from the part's LICENSE (then ATTRIBUTION) file.

    Raises SystemExit when no known licence is named: data of unknown licence is not converted.

    Example:
        >>> import tempfile; d = Path(tempfile.mkdtemp())
        >>> _ = (d / "LICENSE").write_text("Released under the Open Government Licence v3.0.")
        >>> detect_licence(d)
        'Open Government Licence v3.0'
    """
    patterns = (
        (r"Creative Commons Attribution[- ]ShareAlike[^0-9]{0,20}(\d\.\d)", "CC BY-SA {}"),
        (r"Creative Commons Attribution[^0-9]{0,20}(\d\.\d)", "CC BY {}"),
        (r"\bCC[- ]BY[- ]SA[- ](\d\.\d)", "CC BY-SA {}"),
        (r"Open Government Licen[cs]e v?(\d\.\d)", "Open Government Licence v{}"),
        (r"\bpublic domain\b", "Public domain"),
    )
    for name in ("LICENSE", "ATTRIBUTION"):
        path = part_dir / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for regex, short in patterns:
            m = re.search(regex, text, re.IGNORECASE)
            if m:
                return short.format(*m.groups())
    raise SystemExit(f"error: {part_dir}: no LICENSE/ATTRIBUTION naming a known licence; not converting it")


def find_parts(paths: Iterable[str | Path]) -> list[Path]:
    """Part folders from the arguments: a part itself, or every part inside a folder; sorted by name.

    Example:
        >>> find_parts([]) == []
        True
    """
    parts: dict[str, Path] = {}
    for arg in paths:
        path = Path(arg)
        if (path / "documents.json").is_file():
            found = [path]
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if (p / "documents.json").is_file())
            if not found:
                raise SystemExit(f"error: {path}: neither a re3d part nor a folder of parts (no documents.json)")
        else:
            raise SystemExit(f"error: {path}: not a folder")
        for part in found:
            missing = [f for f in PART_FILES if not (part / f).is_file()]
            if missing:
                raise SystemExit(f"error: {part}: missing {missing}")
            if part.name in parts and parts[part.name].resolve() != part.resolve():
                raise SystemExit(f"error: two parts are called {part.name!r}: {parts[part.name]} and {part}")
            parts[part.name] = part
    return [parts[name] for name in sorted(parts)]


def read_jsonl(path: Path, required: Sequence[str]) -> list[dict[str, Any]]:
    """The JSON objects of a mongoexport file, one a line; a bad line or missing key raises.

    Example:
        >>> import tempfile; p = Path(tempfile.mkdtemp()) / "x.json"
        >>> _ = p.write_text('{"_id": "a"}\\n\\n{"_id": "b"}\\n')
        >>> [r["_id"] for r in read_jsonl(p, ["_id"])]
        ['a', 'b']
    """
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"error: {path}:{n}: not JSON: {exc.msg}") from None
            missing = [k for k in required if k not in row]
            if missing:
                raise SystemExit(f"error: {path}:{n}: missing key(s) {missing}")
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------- bookkeeping
@dataclass
class Stats:
    """Counts of everything that went in, was fixed, kept or dropped (by reason)."""

    parts: list[str] = field(default_factory=list)
    documents: int = 0
    entities_in: int = 0
    entities_kept: int = 0
    entity_drops: Counter = field(default_factory=Counter)
    entity_fixes: Counter = field(default_factory=Counter)
    overlap_pairs: Counter = field(default_factory=Counter)
    relations_in: int = 0
    relations_kept: int = 0
    relation_drops: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """The lines printed on stderr (``in=``, ``kept=``, ``dropped=`` then ``dropped:`` by reason)."""

        def counts(counter: Counter, order: Sequence[str] = ()) -> str:
            keys = list(order) + sorted(k for k in counter if k not in order)
            return " ".join(f"{k}={counter.get(k, 0)}" for k in keys) or "-"

        lines = [
            f"re3d parts: {', '.join(self.parts)}; documents: {self.documents}",
            f"entities: in={self.entities_in} kept={self.entities_kept} dropped={sum(self.entity_drops.values())}",
            f"  entities dropped: {counts(self.entity_drops, ENTITY_DROP_REASONS)}",
            "  entities fixed and kept: "
            + counts(self.entity_fixes, ("value_matched_after_normalisation", "reanchored", "trimmed")),
            "  overlap drops (kept type > dropped type): "
            + (", ".join(f"{k}={v}" for k, v in sorted(self.overlap_pairs.items(), key=lambda kv: (-kv[1], kv[0])))
               or "-"),
            f"relations: in={self.relations_in} kept={self.relations_kept} "
            f"dropped={sum(self.relation_drops.values())}",
            f"  relations dropped: {counts(self.relation_drops, RELATION_DROP_REASONS)}",
            f"  notes (nothing dropped): {counts(self.notes)}",
        ]
        return "\n".join(lines)


@dataclass
class _Candidate:
    row: Mapping[str, Any]
    start: int = -1
    end: int = -1
    drop: str | None = None  # reason, once dropped
    fixes: tuple[str, ...] = ()  # offset fixes applied (counted only if the entity is kept)
    twin: "_Candidate | None" = None  # the kept duplicate this one was folded into

    @property
    def type(self) -> str:
        return str(self.row["type"])

    @property
    def confidence(self) -> float:
        return float(self.row.get("confidence") or 0.0)

    def rank(self) -> tuple:
        prio = TYPE_PRIORITY.index(self.type) if self.type in TYPE_PRIORITY else len(TYPE_PRIORITY)
        return (self.confidence > 0, self.end - self.start, self.confidence, -prio, -self.start, -self.end)


@dataclass
class Converted:
    """One converted document, plus the re3d entity row behind each kept span id."""

    document: Document
    origins: dict[str, Mapping[str, Any]]


# ----------------------------------------------------------------------------- conversion
def resolve_overlaps(candidates: Sequence[_Candidate], stats: Stats) -> list[_Candidate]:
    """Keep the best-ranked of overlapping spans (see the module docstring); mark the others dropped."""
    kept: list[_Candidate] = []
    for cand in sorted(candidates, key=lambda c: c.rank(), reverse=True):
        winner = next((k for k in kept if k.start < cand.end and cand.start < k.end), None)
        if winner is None:
            kept.append(cand)
        else:
            cand.drop = "overlap"
            stats.entity_drops["overlap"] += 1
            stats.overlap_pairs[f"{winner.type}>{cand.type}"] += 1
    return kept


def convert_document(
    doc_row: Mapping[str, Any],
    entity_rows: Sequence[Mapping[str, Any]],
    relation_rows: Sequence[Mapping[str, Any]],
    schema: LabelSchema,
    stats: Stats,
    *,
    part: str,
    licence: str,
    source: str = "",
    min_confidence: float = 0.0,
    check_pairs: bool = True,
) -> Converted:
    """Apply the rules of the module docstring to one re3d document; counts go into ``stats``.

    Example:
        >>> s = LabelSchema.from_dict({"name": "t", "entities": [{"label": "Location"}],
        ...     "relations": [{"label": "CoLocated", "pairs": [["Location", "Location"]]}]})
        >>> doc = {"_id": "d", "title": "t", "text": "From Aden to Sanaa.", "sourceName": "x", "sourceUrl": ""}
        >>> ents = [{"begin": 5, "end": 9, "type": "Location", "value": "Aden", "confidence": 1},
        ...         {"begin": 11, "end": 16, "type": "Location", "value": "Sanaa", "confidence": 1}]
        >>> rels = [{"sourceBegin": 5, "sourceEnd": 9, "targetBegin": 11, "targetEnd": 16, "type": "CoLocated"}]
        >>> st = Stats(); c = convert_document(doc, ents, rels, s, st, part="p", licence="Public domain")
        >>> [(c.document.span_text(x), x.start) for x in c.document.spans], st.entity_fixes["reanchored"]
        ([('Aden', 5), ('Sanaa', 13)], 1)
        >>> len(c.document.relations)
        1
    """
    text = str(doc_row["text"])
    labels = set(schema.entity_labels)
    stats.entities_in += len(entity_rows)

    # Rules 1-4: each entity on its own.
    candidates: list[_Candidate] = []
    for row in entity_rows:
        cand = _Candidate(row)
        candidates.append(cand)
        if cand.type not in labels:
            cand.drop = "type_not_in_schema"
        elif cand.confidence < min_confidence:
            cand.drop = "below_min_confidence"
        else:
            anchored = anchor(text, int(row["begin"]), int(row["end"]), str(row["value"]))
            if anchored is None:
                cand.drop = "unresolvable_offsets"
            else:
                start, end, how = anchored
                if how == "normalised":
                    cand.fixes += ("value_matched_after_normalisation",)
                elif how == "reanchored":
                    cand.fixes += ("reanchored",)
                cand.start, cand.end = trim(text, start, end)
                if cand.start == cand.end:
                    cand.drop = "whitespace_only"
                elif (cand.start, cand.end) != (start, end):
                    cand.fixes += ("trimmed",)
        if cand.drop:
            stats.entity_drops[cand.drop] += 1

    # Rule 5: duplicates after the offsets are settled; the most confident, then the first, stays.
    by_key: dict[tuple[int, int, str], _Candidate] = {}
    for cand in sorted((c for c in candidates if not c.drop), key=lambda c: -c.confidence):
        key = (cand.start, cand.end, cand.type)
        if key in by_key:
            cand.drop, cand.twin = "duplicate", by_key[key]
            stats.entity_drops["duplicate"] += 1
        else:
            by_key[key] = cand

    # Rule 6: overlaps.
    kept = resolve_overlaps(list(by_key.values()), stats)
    kept.sort(key=lambda c: (c.start, c.end))
    spans, origins, span_at = [], {}, {}
    for n, cand in enumerate(kept, 1):
        span = Span(f"e{n}", cand.start, cand.end, cand.type)
        spans.append(span)
        origins[span.id] = cand.row
        stats.entity_fixes.update(cand.fixes)
        span_at[(cand.start, cand.end)] = span  # kept spans never overlap, so offsets are unique
    stats.entities_kept += len(spans)
    stats.notes["entities_kept_with_confidence_0"] += sum(1 for c in kept if c.confidence == 0)

    raw_at: dict[tuple[int, int], list[_Candidate]] = defaultdict(list)
    for cand in candidates:
        raw_at[(int(cand.row["begin"]), int(cand.row["end"]))].append(cand)

    def endpoint(begin: int, end: int) -> tuple[Span | None, str]:
        here = raw_at.get((begin, end), [])
        for offsets in [(begin, end)] + [(c.start, c.end) for c in here if c.drop in (None, "overlap", "duplicate")]:
            if offsets in span_at:
                return span_at[offsets], ""
        fates = [c.twin.drop if c.drop == "duplicate" and c.twin else c.drop for c in here]
        if "overlap" in fates:
            return None, "endpoint_dropped_by_overlap_resolution"
        if here:
            return None, "endpoint_dropped_by_entity_checks"
        return None, "endpoint_not_an_entity"

    relations: list[Relation] = []
    seen: set[Relation] = set()
    stats.relations_in += len(relation_rows)
    for row in relation_rows:
        label = str(row["type"])
        src = (int(row["sourceBegin"]), int(row["sourceEnd"]))
        tgt = (int(row["targetBegin"]), int(row["targetEnd"]))
        for side, (b, e) in (("source", src), ("target", tgt)):
            if side in row and normalise(text[b:e]) != normalise(str(row[side])):
                stats.notes[f"relation_{side}_text_differs"] += 1
        reason = ""
        if schema.relation(label) is None:
            reason = "relation_type_not_in_schema"
        elif src == tgt:
            reason = "self_relation"
        else:
            head, reason = endpoint(*src)
            if head is not None:
                tail, reason = endpoint(*tgt)
            if not reason:
                rel = Relation(head.id, tail.id, label)
                if head.id == tail.id:
                    reason = "self_relation"
                elif check_pairs and not schema.allows(label, head.label, tail.label):
                    reason = "type_pair_not_in_schema"
                elif rel in seen:
                    reason = "duplicate_relation"
                else:
                    seen.add(rel)
                    relations.append(rel)
        if reason:
            stats.relation_drops[reason] += 1
    stats.relations_kept += len(relations)
    per_pair = Counter((r.head, r.tail) for r in relations)
    stats.notes["span_pairs_with_several_relation_types"] += sum(1 for v in per_pair.values() if v > 1)

    provenance = Provenance(
        source=source,
        fields={
            "data": {"title": str(doc_row.get("title") or "")},
            "meta": {
                "source_name": str(doc_row.get("sourceName") or ""),
                "source_url": str(doc_row.get("sourceUrl") or ""),
                "licence": licence,
                "part": part,
                "re3d_document_id": str(doc_row["_id"]),
            },
        },
    )
    document = Document(str(doc_row["_id"]), text, tuple(spans), tuple(relations), provenance)
    return Converted(document, origins)


def convert_parts(
    part_dirs: Sequence[Path],
    schema: LabelSchema,
    *,
    documents: Iterable[str] | None = None,
    min_confidence: float = 0.0,
    check_pairs: bool = True,
) -> tuple[list[Converted], Stats]:
    """Convert the given parts (in part-name, then document-id order); ``documents`` filters by re3d id.

    Example:
        >>> convert_parts([], LabelSchema.load(DEFAULT_SCHEMA))[0]
        []
    """
    wanted = None if documents is None else set(documents)
    stats = Stats()
    out: list[Converted] = []
    found: set[str] = set()
    for part_dir in sorted(part_dirs, key=lambda p: p.name):
        licence = detect_licence(part_dir)
        stats.parts.append(f"{part_dir.name} ({licence})")
        docs = read_jsonl(part_dir / "documents.json", ["_id", "text"])
        ents = read_jsonl(part_dir / "entities.json", ["documentId", "begin", "end", "type", "value"])
        rels = read_jsonl(
            part_dir / "relations.json",
            ["documentId", "sourceBegin", "sourceEnd", "targetBegin", "targetEnd", "type"],
        )
        ids = [str(d["_id"]) for d in docs]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise SystemExit(f"error: {part_dir / 'documents.json'}: repeated document id(s) {dup}")
        by_id = {str(d["_id"]): d for d in docs}
        ents_of, rels_of = defaultdict(list), defaultdict(list)
        for row in ents:
            ents_of[str(row["documentId"])].append(row)
        for row in rels:
            rels_of[str(row["documentId"])].append(row)
        if wanted is None:
            # Rows of a document that is not in documents.json cannot be placed: count, do not hide.
            for doc_id in set(ents_of) - set(by_id):
                stats.entities_in += len(ents_of[doc_id])
                stats.entity_drops["unknown_document"] += len(ents_of[doc_id])
            for doc_id in set(rels_of) - set(by_id):
                stats.relations_in += len(rels_of[doc_id])
                stats.relation_drops["unknown_document"] += len(rels_of[doc_id])
        for doc_id in sorted(by_id):
            if wanted is not None and doc_id not in wanted:
                continue
            found.add(doc_id)
            out.append(
                convert_document(
                    by_id[doc_id], ents_of[doc_id], rels_of[doc_id], schema, stats,
                    part=part_dir.name, licence=licence, source=str(part_dir / "documents.json"),
                    min_confidence=min_confidence, check_pairs=check_pairs,
                )
            )
    if wanted is not None and wanted - found:
        raise SystemExit(f"error: document id(s) not found in the given parts: {sorted(wanted - found)}")
    stats.documents = len(out)
    return out, stats


def observed_pairs(converted: Iterable[Converted]) -> dict[str, list[list[str]]]:
    """Per relation label, the sorted (source label, target label) pairs among kept relations.

    Example:
        >>> observed_pairs([])
        {}
    """
    pairs: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for conv in converted:
        spans = conv.document.span_by_id()
        for rel in conv.document.relations:
            pairs[rel.label].add((spans[rel.head].label, spans[rel.tail].label))
    return {label: [list(p) for p in sorted(v)] for label, v in sorted(pairs.items())}


# ----------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (see the module docstring); returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("re3d_dirs", nargs="+", metavar="RE3D_DIR", help="a part folder, or a folder of parts")
    ap.add_argument("--out", type=Path, help="the Label Studio JSON export to write")
    ap.add_argument("--schema", default=str(DEFAULT_SCHEMA), help="label schema (default: re3d-schema.yaml beside this script)")
    ap.add_argument("--documents", help="comma-separated re3d document ids: convert only these")
    ap.add_argument("--min-confidence", type=float, default=0.0,
                    help="drop entities with a lower re3d confidence (default 0: keep all)")
    ap.add_argument("--print-pairs", action="store_true",
                    help="print the (source, target) type pairs of the kept relations as YAML, without checking "
                         "them against the schema (this is how the pairs in re3d-schema.yaml were derived)")
    args = ap.parse_args(argv)
    if args.out is None and not args.print_pairs:
        ap.error("--out is required (unless --print-pairs)")
    try:
        schema = LabelSchema.load(args.schema)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    documents = None if args.documents is None else [d.strip() for d in args.documents.split(",") if d.strip()]
    parts = find_parts(args.re3d_dirs)
    converted, stats = convert_parts(
        parts, schema, documents=documents, min_confidence=args.min_confidence, check_pairs=not args.print_pairs
    )
    print(stats.summary(), file=sys.stderr)
    if args.print_pairs:
        for label, pairs in observed_pairs(converted).items():
            print(f"{label}: {json.dumps(pairs)}")
    if args.out is None:
        return 0

    tasks = documents_to_tasks([c.document for c in converted], text_field=schema.text_field)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    try:
        result = read_labelstudio(args.out, schema)  # strict: the first bad region raises
    except InputError as exc:
        raise SystemExit(f"error: {args.out} does not read back with the strict reader: {exc}") from None
    n_spans = sum(len(d.spans) for d in result.documents)
    n_rels = sum(len(d.relations) for d in result.documents)
    if (len(result.documents), n_spans, n_rels) != (len(converted), stats.entities_kept, stats.relations_kept):
        raise SystemExit(
            f"error: {args.out} reads back as {len(result.documents)} documents, {n_spans} spans, {n_rels} relations; "
            f"written were {len(converted)}, {stats.entities_kept}, {stats.relations_kept}"
        )
    print(f"wrote {args.out}: {len(tasks)} task(s)", file=sys.stderr)
    print("strict reader: " + result.report.summary().replace("\n", "\nstrict reader: "), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
