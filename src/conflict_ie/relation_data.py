"""Relation inputs: typed markers, candidate pairs and their encoding (Zhong & Chen 2021, "PURE").

For a candidate pair, typed markers go around the two spans in their context
(``<S:OFFICIAL> Gladkov </S:OFFICIAL> ... <O:LOCATION> Belgorod </O:LOCATION>``);
the relation model reads the marked text and classifies the pair from its two
start-marker states. Direction matters: (A, B) and (B, A) are different
candidates, each only if the schema allows its label pair. A per-region
attribute (the casualty type) marks its span alone.

Candidates are pairs in the same or a neighbouring sentence (configurable), with
at most ``max_token_distance`` sub-tokens of the relation tokenizer between them.
Every text is prepared once (:meth:`RelationEncoder.prepare`: sentences and
sub-token offsets); the encoder keeps no per-text state, so one encoder serves
many threads.

A pair's gold labels are a set: a pair may hold several relations, and the
reverse of a pair holding a symmetric relation holds it too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from conflict_ie.documents import Document, Span
from conflict_ie.schema import Attribute, LabelSchema
from conflict_ie.sentences import Sentences


def marker_tokens(schema: LabelSchema) -> list[str]:
    """The typed marker strings added to the tokenizer as special tokens.

    Example:
        >>> marker_tokens(LabelSchema.load("conflict"))[:2]
        ['<S:ARMED_GROUP>', '</S:ARMED_GROUP>']
    """
    out = []
    for label in schema.entity_labels:
        out += [f"<S:{label}>", f"</S:{label}>", f"<O:{label}>", f"</O:{label}>"]
    return out


@dataclass(frozen=True)
class Marked:
    """A context with markers inserted, and where each original character went."""

    text: str
    head_marker: int  # character offset of the head's start marker in ``text``
    tail_marker: int | None
    char_map: list[int]  # for each character of ``text``, its offset in the document (-1 for marker text)


def insert_markers(text: str, ctx: tuple[int, int], head: Span, tail: Span | None) -> Marked:
    """Insert typed markers around ``head`` (subject) and ``tail`` (object) inside ``text[ctx[0]:ctx[1]]``.

    Example:
        >>> m = insert_markers("Gladkov of Belgorod said", (0, 24), Span("a", 0, 7, "OFFICIAL"),
        ...                    Span("b", 11, 19, "LOCATION"))
        >>> m.text
        '<S:OFFICIAL> Gladkov </S:OFFICIAL> of <O:LOCATION> Belgorod </O:LOCATION> said'
        >>> "".join(m.text[i] for i, o in enumerate(m.char_map) if o >= 0) == "Gladkov of Belgorod said"
        True
    """
    inserts = [(head.start, 0, f"<S:{head.label}> ", "head"), (head.end, 1, f" </S:{head.label}>", None)]
    if tail is not None:
        inserts += [(tail.start, 0, f"<O:{tail.label}> ", "tail"), (tail.end, 1, f" </O:{tail.label}>", None)]
    # At one position, closing markers go before opening ones (adjacent spans).
    inserts.sort(key=lambda x: (x[0], -x[1]))
    pieces, char_map = [], []
    pos = ctx[0]
    where: dict[str, int] = {}
    length = 0
    for at, _, marker, name in inserts:
        chunk = text[pos:at]
        pieces.append(chunk)
        char_map += range(pos, at)
        length += len(chunk)
        if name:
            where[name] = length
        pieces.append(marker)
        char_map += [-1] * len(marker)
        length += len(marker)
        pos = at
    pieces.append(text[pos : ctx[1]])
    char_map += range(pos, ctx[1])
    return Marked("".join(pieces), where["head"], where.get("tail"), char_map)


@dataclass(frozen=True)
class PreparedText:
    """What every candidate of one text needs, computed once: sentences and sub-token offsets."""

    text: str
    sentences: Sentences
    token_starts: np.ndarray  # start offset of every sub-token of the text, ascending


@dataclass
class CandidateStats:
    """Candidate pairs seen, and those dropped because their markers did not fit the window."""

    pairs: int = 0
    dropped_window: int = 0
    attributes: int = 0
    attributes_dropped_window: int = 0

    def add(self, other: "CandidateStats") -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass(frozen=True)
class RelationEncoder:
    """Turns (text, head, tail) into model inputs; shared by training and inference, and stateless.

    ``attributes`` are the schema's per-region choice attributes the model predicts, in order.
    """

    tokenizer: Any
    schema: LabelSchema
    max_length: int
    max_sentence_distance: int
    max_token_distance: int
    attributes: tuple[Attribute, ...] = field(default=())

    @property
    def relation_labels(self) -> tuple[str, ...]:
        return self.schema.relation_labels

    def prepare(self, text: str) -> PreparedText:
        """Sentences and sub-token offsets of ``text`` (once per text, whatever the number of pairs)."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                             verbose=False)
        starts = np.array([s for s, e in enc["offset_mapping"] if e > s], dtype=np.int64)
        return PreparedText(text, Sentences.of(text), starts)

    def candidates(self, prep: PreparedText, spans: Sequence[Span]) -> list[tuple[Span, Span]]:
        """Ordered (head, tail) pairs the schema allows, close enough in sentences and sub-tokens.

        Example:
            >>> s = LabelSchema.load("conflict")
            >>> enc = RelationEncoder(None, s, 64, max_sentence_distance=0, max_token_distance=50)
            >>> prep = PreparedText("Gladkov of Belgorod spoke. Later, in Kyiv.",
            ...                     Sentences(((0, 26), (27, 42)), (26, 42)), np.array([0, 8, 11, 20, 27, 33, 36]))
            >>> sp = [Span("a", 0, 7, "OFFICIAL"), Span("b", 11, 19, "LOCATION"), Span("c", 37, 41, "LOCATION")]
            >>> [(h.id, t.id) for h, t in enc.candidates(prep, sp)]
            [('a', 'b')]
        """
        sent = {s.id: prep.sentences.index_of(s.start) for s in spans}
        allowed = self.schema.allowed_pairs
        starts = prep.token_starts
        # Sub-token index of a span's first token, and one past its last: the tokens between two
        # spans are then ``second's first - first's end``.
        tok = {s.id: (int(np.searchsorted(starts, s.start, "left")), int(np.searchsorted(starts, s.end, "left")))
               for s in spans}
        # Index spans by sentence so that a long article costs pairs per neighbourhood, not n squared.
        by_sentence: dict[int, list[Span]] = {}
        for sp in spans:
            by_sentence.setdefault(sent[sp.id], []).append(sp)
        d = self.max_sentence_distance
        out = []
        for h in spans:
            near = [t for k in range(sent[h.id] - d, sent[h.id] + d + 1) for t in by_sentence.get(k, ())]
            for t in sorted(near, key=lambda x: (x.start, x.end)):
                if h.id == t.id or (h.label, t.label) not in allowed:
                    continue
                first, second = (h, t) if h.start <= t.start else (t, h)
                if max(0, tok[second.id][0] - tok[first.id][1]) > self.max_token_distance:
                    continue
                out.append((h, t))
        return out

    def encode(self, prep: PreparedText, head: Span, tail: Span | None) -> dict[str, Any] | None:
        """Model inputs for one candidate (``tail=None``: an attribute of ``head``), or None if the
        markers do not fit in ``max_length`` tokens even in a narrowed context."""
        spans = [head] + ([tail] if tail else [])
        sents = prep.sentences
        first = min(sents.index_of(s.start) for s in spans)
        last = max(sents.index_of(s.end - 1) for s in spans)
        ctx = sents.context(first, last)
        ctx = (min(ctx[0], *(s.start for s in spans)), max(ctx[1], *(s.end for s in spans)))
        for _ in range(3):
            marked = insert_markers(prep.text, ctx, head, tail)
            enc = self.tokenizer(marked.text, return_offsets_mapping=True, truncation=False, verbose=False)
            if len(enc["input_ids"]) <= self.max_length:
                break
            # Too long: narrow the context around the spans and try again.
            lo, hi = min(s.start for s in spans), max(s.end for s in spans)
            margin = max(0, (ctx[1] - ctx[0]) // 4)
            ctx = (max(ctx[0], lo - margin), min(ctx[1], hi + margin))
        else:
            return None
        # Special tokens ([CLS]) have the empty offset (0, 0): match real tokens only, or a span at the
        # very start of the context would point at [CLS] instead of its marker.
        starts = {o[0]: i for i, o in reversed(list(enumerate(enc["offset_mapping"]))) if o[1] > o[0]}
        head_pos = starts.get(marked.head_marker)
        tail_pos = starts.get(marked.tail_marker) if tail else head_pos
        if head_pos is None or tail_pos is None:
            return None
        return {"input_ids": list(enc["input_ids"]), "head_pos": head_pos, "tail_pos": tail_pos}


def gold_label_sets(doc: Document, schema: LabelSchema) -> dict[tuple[str, str], frozenset[str]]:
    """Every ordered span pair's gold relation labels; a symmetric label holds in both orders.

    Example:
        >>> from conflict_ie.documents import Relation
        >>> s = LabelSchema.load("conflict")
        >>> d = Document("d", "A B", (Span("a", 0, 1, "ARMED_GROUP"), Span("b", 2, 3, "ARMED_GROUP")),
        ...              (Relation("a", "b", "FIGHTS"),))
        >>> sorted(gold_label_sets(d, s).items())
        [(('a', 'b'), frozenset({'FIGHTS'})), (('b', 'a'), frozenset({'FIGHTS'}))]
    """
    out: dict[tuple[str, str], set[str]] = {}
    for r in doc.relations:
        out.setdefault((r.head, r.tail), set()).add(r.label)
        rel = schema.relation(r.label)
        if rel is not None and rel.symmetric:
            out.setdefault((r.tail, r.head), set()).add(r.label)
    return {k: frozenset(v) for k, v in out.items()}


def training_rows(docs: Sequence[Document], enc: RelationEncoder, *, negative_ratio: float, seed: int):
    """Relation rows (positives + subsampled pairs with no relation) and attribute rows from gold documents.

    A relation row carries ``task`` 0, ``rel_labels``, a multi-hot vector over the schema's
    relation labels, and ``rel_mask``, which of those labels the schema allows for the pair's two
    entity labels: only those are learned from the row. (A label that cannot hold between an
    OFFICIAL and a LOCATION learns nothing from such pairs; without the mask a rare label sees
    every other pair as a negative and never reaches the threshold.) An attribute row carries
    ``task`` 1 + the attribute's index and ``attr_label``, the index of its choice.
    """
    rng = random.Random(seed)
    labels = enc.relation_labels
    n_rel = len(labels)
    rows: list[dict[str, Any]] = []
    stats = {"positive": 0, "negative_kept": 0, "negative_total": 0, "gold_out_of_reach": 0, "attribute": 0,
             "pair_labels_max": 0}
    cand = CandidateStats()
    for doc in docs:
        gold = gold_label_sets(doc, enc.schema)
        prep = enc.prepare(doc.text)
        pairs = enc.candidates(prep, doc.spans)
        cand.pairs += len(pairs)
        reach = {(h.id, t.id) for h, t in pairs}
        stats["gold_out_of_reach"] += sum(1 for k in gold if k not in reach)
        pos = [p for p in pairs if (p[0].id, p[1].id) in gold]
        neg = [p for p in pairs if (p[0].id, p[1].id) not in gold]
        stats["negative_total"] += len(neg)
        keep = min(len(neg), int(round(negative_ratio * max(len(pos), 1))))
        for h, t in pos + rng.sample(neg, keep):
            row = enc.encode(prep, h, t)
            if row is None:
                cand.dropped_window += 1
                continue
            found = gold.get((h.id, t.id), frozenset())
            stats["pair_labels_max"] = max(stats["pair_labels_max"], len(found))
            rows.append({**row, "task": 0, "rel_labels": [float(l in found) for l in labels],
                         "rel_mask": [float(enc.schema.allows(l, h.label, t.label)) for l in labels],
                         "attr_label": -100})
            stats["positive" if found else "negative_kept"] += 1
        for k, attr in enumerate(enc.attributes):
            for s in doc.spans:
                value = s.attributes.get(attr.name)
                if s.label not in attr.applies_to or value not in attr.choices:
                    continue
                cand.attributes += 1
                row = enc.encode(prep, s, None)
                if row is None:
                    cand.attributes_dropped_window += 1
                    continue
                rows.append({**row, "task": 1 + k, "rel_labels": [0.0] * n_rel, "rel_mask": [0.0] * n_rel,
                             "attr_label": attr.choices.index(value)})
                stats["attribute"] += 1
    rng.shuffle(rows)
    stats["candidates"] = cand.to_dict()
    return rows, stats


class RelationCollator:
    """Pads a list of encoded rows into a batch (per batch, never to a fixed size).

    Example:
        >>> b = RelationCollator(0)([{"input_ids": [5, 6, 7], "head_pos": 1, "tail_pos": 2, "task": 0}])
        >>> b["input_ids"].shape, b["attention_mask"].tolist()
        (torch.Size([1, 3]), [[1, 1, 1]])
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows):
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r["input_ids"])] = torch.tensor(r["input_ids"])
            mask[i, : len(r["input_ids"])] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        for key in ("head_pos", "tail_pos", "task", "attr_label"):
            if key in rows[0]:
                batch[key] = torch.tensor([r[key] for r in rows], dtype=torch.long)
        for key in ("rel_labels", "rel_mask"):
            if key in rows[0]:
                batch[key] = torch.tensor([r[key] for r in rows], dtype=torch.float)
        return batch
