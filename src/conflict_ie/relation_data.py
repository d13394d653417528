"""Relation inputs: windows of text read in one encoder pass, every candidate pair as levitated markers.

A window is a run of whole sentences that fits ``max_length`` tokens. Every candidate
pair of the window gets four typed marker tokens appended after the text
(``<S:OFFICIAL> </S:OFFICIAL> <O:LOCATION> </O:LOCATION>``): each takes the position
id of its span's first or last token, so the text's positions are unchanged, and
the attention mask lets a marker see the text and its own pair's markers, nothing
of other pairs, while the text sees only the text. One pass then classifies every
pair of the window from its two start markers, each conditioned on its own pair as
in PURE's one-pass-per-pair design (Zhong & Chen 2021), whose "approximation" (and
PL-Marker, Ye et al. 2022) this is: the cost grows with the text plus four tokens a
pair, not with a text pass per pair, which made relations about 92% of prediction
time. A per-region attribute (the casualty type) gets its span's subject markers
alone. A window with many pairs is packed into several passes of at most
``max_pairs`` pairs, each repeating the text (training packs fewer than inference,
to bound its memory; the scores do not depend on the packing). With ``markers="start"``
a span gets only its start marker (``<S:OFFICIAL> <O:LOCATION>``), two tokens a pair.

Neighbouring windows share ``max_sentence_distance`` sentences, so that every
candidate pair (same or neighbouring sentence) lies whole in some window; a pair is
classified in the window where it sits most centrally. Direction matters: (A, B)
and (B, A) are different candidates, each only if the schema allows its label
pair. A pair's gold labels are a set: a pair may hold several relations, and the
reverse of a pair holding a symmetric relation holds it too.

The encoder keeps no per-text state, so one encoder serves many threads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from conflict_ie.documents import Document, Span
from conflict_ie.schema import Attribute, LabelSchema
from conflict_ie.sentences import Sentences

#: What a relation model folder's config calls this design (an older folder, one pass per pair, has none).
DESIGN = "levitated_markers"
#: Levitated markers per span: its first and last token ("start_end"), or its first only ("start").
SPAN_MARKERS = ("start_end", "start")


def marker_tokens(schema: LabelSchema) -> list[str]:
    """The typed marker strings added to the tokenizer as special tokens.

    Example:
        >>> marker_tokens(LabelSchema.load("conflict"))[:4]
        ['<S:ARMED_GROUP>', '</S:ARMED_GROUP>', '<O:ARMED_GROUP>', '</O:ARMED_GROUP>']
    """
    out = []
    for label in schema.entity_labels:
        out += [f"<S:{label}>", f"</S:{label}>", f"<O:{label}>", f"</O:{label}>"]
    return out


@dataclass(frozen=True)
class PreparedText:
    """What every window of one text needs, computed once: sentences and sub-token offsets."""

    text: str
    sentences: Sentences
    token_starts: np.ndarray  # start offset of every sub-token of the text, ascending


@dataclass(frozen=True)
class Window:
    """A character range of the text, tokenized (special tokens included), with the first and last
    token index of every span that lies whole inside it (``positions``: span id -> (first, last))."""

    start: int
    end: int
    input_ids: list[int]
    positions: dict[str, tuple[int, int]]

    def centrality(self, lo: int, hi: int) -> int:
        """How far ``[lo, hi)`` sits from the window's nearer edge (higher: more context around it)."""
        return min(lo - self.start, self.end - hi)


@dataclass
class CandidateStats:
    """Candidate pairs seen and those no window could hold; windows encoded and their tokens."""

    pairs: int = 0
    dropped_window: int = 0
    attributes: int = 0
    attributes_dropped_window: int = 0
    windows: int = 0
    window_tokens: int = 0

    def add(self, other: "CandidateStats") -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


#: A job of one window: ``("pair", head, tail)`` or ``("attr", span, attribute index)``.
Job = tuple[str, Span, Any]


@dataclass(frozen=True)
class RelationEncoder:
    """Turns a text and its spans into windows and jobs; shared by training and inference, stateless.

    ``attributes`` are the schema's per-region choice attributes the model predicts, in order.
    """

    tokenizer: Any
    schema: LabelSchema
    max_length: int
    max_sentence_distance: int
    max_token_distance: int
    attributes: tuple[Attribute, ...] = field(default=())
    max_pairs: int = 32
    #: "start_end": markers at a span's first and last token; "start": at its first token only.
    markers: str = "start_end"

    def __post_init__(self) -> None:
        if self.markers not in SPAN_MARKERS:
            raise ValueError(f"markers is {' or '.join(map(repr, SPAN_MARKERS))}, got {self.markers!r}")

    @property
    def relation_labels(self) -> tuple[str, ...]:
        return self.schema.relation_labels

    def prepare(self, text: str) -> PreparedText:
        """Sentences and sub-token offsets of ``text`` (once per text)."""
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

    def _units(self, prep: PreparedText, spans: Sequence[Span], budget: int) -> list[tuple[int, int]]:
        """Character ranges to build windows from: the sentences, a sentence longer than half the
        budget cut at token starts outside spans, and a range widened to hold every span it cuts."""
        starts = prep.token_starts
        units = []
        for lo, hi in prep.sentences.bounds:
            a, b = int(np.searchsorted(starts, lo)), int(np.searchsorted(starts, hi))
            step = max(budget // 2, 1)
            cuts = [int(starts[k]) for k in range(a + step, b, step)]
            edges = [lo] + [c for c in cuts if not any(s.start < c < s.end for s in spans)] + [hi]
            units += list(zip(edges[:-1], edges[1:]))
        # A span that crosses a unit edge (a sentence boundary inside a name) joins the two units.
        merged: list[tuple[int, int]] = []
        for lo, hi in units:
            if merged and any(s.start < lo and s.end > merged[-1][1] for s in spans):
                merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def _cost(self, prep: PreparedText, lo: int, hi: int) -> int:
        starts = prep.token_starts
        return int(np.searchsorted(starts, hi) - np.searchsorted(starts, lo)) + 2

    def encode_window(self, prep: PreparedText, ctx: tuple[int, int], spans: Sequence[Span]) -> Window | None:
        """Tokenize ``prep.text[ctx]`` and find the tokens of every span inside it; None if too long."""
        enc = self.tokenizer(prep.text[ctx[0]:ctx[1]], return_offsets_mapping=True, truncation=False, verbose=False)
        if len(enc["input_ids"]) > self.max_length:
            return None
        # Special tokens ([CLS]) have the empty offset (0, 0): only real tokens are looked at.
        real = [(i, ctx[0] + a, ctx[0] + b) for i, (a, b) in enumerate(enc["offset_mapping"]) if b > a]
        positions = {}
        for s in spans:
            if s.start >= ctx[0] and s.end <= ctx[1]:
                toks = [i for i, a, b in real if a < s.end and b > s.start]
                if toks:
                    positions[s.id] = (toks[0], toks[-1])
        return Window(ctx[0], ctx[1], list(enc["input_ids"]), positions)

    def windows(self, prep: PreparedText, spans: Sequence[Span]) -> list[Window]:
        """Windows over the whole text: runs of units within ``max_length`` tokens, neighbours sharing
        ``max_sentence_distance`` units so that any candidate pair lies whole in one of them.

        Example:
            >>> # enc.windows(enc.prepare(text), spans)[0].positions  -> {span id: (first token, last token)}
        """
        units = self._units(prep, spans, self.max_length)
        d, out, i = self.max_sentence_distance, [], 0
        while i < len(units):
            j = i
            while j + 1 < len(units) and self._cost(prep, units[i][0], units[j + 1][1]) <= self.max_length:
                j += 1
            window = self.encode_window(prep, (units[i][0], units[j][1]), spans)
            if window is not None:
                out.append(window)
            if j == len(units) - 1:
                break
            i = max(i + 1, j - d + 1)
        return out

    def jobs(self, prep: PreparedText, spans: Sequence[Span], pairs: Sequence[tuple[Span, Span]] | None = None,
             stats: CandidateStats | None = None) -> list[tuple[Window, list[Job]]]:
        """The windows that have something to classify, each with its jobs: the candidate pairs
        (``pairs``, by default all of :meth:`candidates`) and the attribute spans it holds most
        centrally. What no window holds is counted in ``stats`` as dropped."""
        stats = stats if stats is not None else CandidateStats()
        pairs = self.candidates(prep, spans) if pairs is None else pairs
        windows = self.windows(prep, spans)
        todo: dict[int, list[Job]] = {}

        def place(job: Job, ids: tuple[str, ...], lo: int, hi: int) -> bool:
            best = max((k for k, w in enumerate(windows) if w.start <= lo and hi <= w.end
                        and all(i in w.positions for i in ids)),
                       key=lambda k: windows[k].centrality(lo, hi), default=None)
            if best is None:
                return False
            todo.setdefault(best, []).append(job)
            return True

        for h, t in pairs:
            stats.pairs += 1
            if not place(("pair", h, t), (h.id, t.id), min(h.start, t.start), max(h.end, t.end)):
                stats.dropped_window += 1
        for k, attr in enumerate(self.attributes):
            for s in spans:
                if s.label in attr.applies_to:
                    stats.attributes += 1
                    if not place(("attr", s, k), (s.id,), s.start, s.end):
                        stats.attributes_dropped_window += 1
        out = [(windows[k], todo[k]) for k in sorted(todo)]
        stats.windows += len(out)
        return out

    def pack(self, window: Window, jobs: Sequence[Job], stats: CandidateStats | None = None) -> list[dict[str, Any]]:
        """Encoder inputs for a window's jobs: the text, then levitated markers (two per span, or one
        with ``markers="start"``), at most ``max_pairs`` pairs (an attribute span counts as one) per
        input. Each input lists ``jobs`` (its own, in order), ``position_ids``, ``groups`` (per token:
        -1 for text, else the job it belongs to), ``pairs`` (the two start-marker indices of each pair
        job), ``between`` (each pair job's ``[first, end)`` text tokens between its spans) and
        ``attrs`` ((start-marker index, attribute index) of each attribute job)."""
        tok = self.tokenizer
        n = len(window.input_ids)
        per_span = 2 if self.markers == "start_end" else 1

        def marker_ids(role: str, label: str) -> list[int]:
            return tok.convert_tokens_to_ids([f"<{role}:{label}>", f"</{role}:{label}>"][:per_span])

        out = []
        for g in range(0, len(jobs), self.max_pairs):
            group = jobs[g : g + self.max_pairs]
            ids, pos, groups = list(window.input_ids), list(range(n)), [-1] * n
            pairs, between, attrs = [], [], []
            for k, (kind, span, other) in enumerate(group):
                first, last = window.positions[span.id]
                s_at = len(ids)
                ids += marker_ids("S", span.label)
                pos += [first, last][:per_span]
                groups += [k] * per_span
                if kind == "pair":
                    t_first, t_last = window.positions[other.id]
                    o_at = len(ids)
                    ids += marker_ids("O", other.label)
                    pos += [t_first, t_last][:per_span]
                    groups += [k] * per_span
                    pairs.append([s_at, o_at])
                    # The text tokens strictly between the two spans (empty when they touch or overlap).
                    lo, hi = (last + 1, t_first) if first <= t_first else (t_last + 1, first)
                    between.append([lo, max(lo, hi)])
                else:
                    attrs.append([s_at, other])
            out.append({"input_ids": ids, "position_ids": pos, "groups": groups, "pairs": pairs, "between": between,
                        "attrs": attrs, "jobs": list(group)})
            if stats is not None:
                stats.window_tokens += len(ids)
        return out


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
    """One row per window of the gold documents: its tokens, its pairs and its attribute spans.

    The pairs are the positives and, per document, a sample of the pairs with no relation
    (``negative_ratio`` per positive; a negative ratio keeps them all). A pair carries
    ``rel_labels``, a multi-hot vector over the schema's relation labels, and ``rel_mask``,
    which of those labels the schema allows for its two entity labels: only those are learned
    from it (without the mask a rare label sees every other pair as a negative and never reaches
    the threshold). An attribute span carries the index of its attribute and of its choice.
    """
    rng = random.Random(seed)
    labels = enc.relation_labels
    rows: list[dict[str, Any]] = []
    stats = {"positive": 0, "negative_kept": 0, "negative_total": 0, "gold_out_of_reach": 0, "attribute": 0,
             "pair_labels_max": 0}
    cand = CandidateStats()
    for doc in docs:
        gold = gold_label_sets(doc, enc.schema)
        prep = enc.prepare(doc.text)
        pairs = enc.candidates(prep, doc.spans)
        reach = {(h.id, t.id) for h, t in pairs}
        stats["gold_out_of_reach"] += sum(1 for k in gold if k not in reach)
        pos = [p for p in pairs if (p[0].id, p[1].id) in gold]
        neg = [p for p in pairs if (p[0].id, p[1].id) not in gold]
        stats["negative_total"] += len(neg)
        keep = len(neg) if negative_ratio < 0 else min(len(neg), int(round(negative_ratio * max(len(pos), 1))))
        chosen = {(h.id, t.id) for h, t in pos + rng.sample(neg, keep)}
        for window, jobs in enc.jobs(prep, doc.spans, [p for p in pairs if (p[0].id, p[1].id) in chosen], cand):
            # Attribute jobs of spans with no valid choice teach nothing: left out.
            jobs = [j for j in jobs if j[0] == "pair" or j[1].attributes.get(enc.attributes[j[2]].name)
                    in enc.attributes[j[2]].choices]
            for packed in enc.pack(window, jobs, cand):
                # Everything but the jobs travels with the row, keys that a subclass's ``pack`` adds included.
                row = {k: v for k, v in packed.items() if k not in ("jobs", "attrs")}
                row.update(rel_labels=[], rel_mask=[], attrs=[])
                for (kind, span, other), idx in zip(
                        [j for j in packed["jobs"] if j[0] == "pair"], packed["pairs"]):
                    found = gold.get((span.id, other.id), frozenset())
                    stats["pair_labels_max"] = max(stats["pair_labels_max"], len(found))
                    stats["positive" if found else "negative_kept"] += 1
                    row["rel_labels"].append([float(lab in found) for lab in labels])
                    row["rel_mask"].append([float(enc.schema.allows(lab, span.label, other.label)) for lab in labels])
                for (kind, span, k), (idx, _) in zip([j for j in packed["jobs"] if j[0] == "attr"], packed["attrs"]):
                    attr = enc.attributes[k]
                    row["attrs"].append([idx, k, attr.choices.index(span.attributes[attr.name])])
                    stats["attribute"] += 1
                if row["pairs"] or row["attrs"]:
                    rows.append(row)
    rng.shuffle(rows)
    stats["candidates"] = cand.to_dict()
    stats["windows"] = len(rows)
    return rows, stats


class RelationCollator:
    """Pads packed rows into a batch (per batch, never to a fixed size): ids, position ids, the 4-D
    additive attention mask of levitated markers, and the pairs and attribute spans flattened into
    index tensors ``(row, position...)``; ``pair_between`` has each pair's in-between token range.

    In the mask, text tokens see the text; a marker sees the text and the markers of its own job;
    a padding row sees itself only (a row that sees nothing misbehaves in SDPA's kernels).

    Example:
        >>> b = RelationCollator(0)([{"input_ids": [5, 6, 7, 8], "position_ids": [0, 1, 2, 1],
        ...                           "groups": [-1, -1, -1, 0], "pairs": [], "attrs": [[3, 0]]}])
        >>> b["attention_mask"][0, 0].eq(0).int().tolist()
        [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
        >>> b["attr_index"].tolist()
        [[0, 3, 0]]
    """

    def __init__(self, pad_id: int, n_labels: int = 0):
        self.pad_id = pad_id
        self.n_labels = n_labels

    def __call__(self, rows):
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        pos = torch.zeros((len(rows), width), dtype=torch.long)
        groups = torch.full((len(rows), width), -2, dtype=torch.long)  # -2: padding
        pair_index, pair_between, attr_index, attr_label, rel_labels, rel_mask = [], [], [], [], [], []
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            pos[i, :n] = torch.tensor(r["position_ids"])
            groups[i, :n] = torch.tensor(r["groups"])
            pair_index += [[i, h, t] for h, t in r.get("pairs", ())]
            # A row made by hand may carry no ``between``: an empty range per pair (no context).
            pair_between += r.get("between") or [[0, 0]] * len(r.get("pairs", ()))
            rel_labels += r.get("rel_labels", ())
            rel_mask += r.get("rel_mask", ())
            for a in r.get("attrs", ()):
                attr_index.append([i, a[0], a[1]])
                if len(a) > 2:
                    attr_label.append(a[2])
        q, k = groups[:, :, None], groups[:, None, :]
        visible = (k == -1) & (q != -2)  # real tokens see the text
        visible |= (q >= 0) & (k == q)  # a marker sees its own job's markers
        visible |= torch.eye(width, dtype=torch.bool)[None]  # every row sees itself, padding included
        mask = torch.zeros(visible.shape, dtype=torch.float).masked_fill(~visible, torch.finfo(torch.float).min)
        batch = {"input_ids": ids, "position_ids": pos, "attention_mask": mask[:, None],
                 "pair_index": torch.tensor(pair_index, dtype=torch.long).reshape(-1, 3),
                 "pair_between": torch.tensor(pair_between, dtype=torch.long).reshape(-1, 2),
                 "attr_index": torch.tensor(attr_index, dtype=torch.long).reshape(-1, 3)}
        if any("rel_labels" in r for r in rows):
            n = self.n_labels or (len(rel_labels[0]) if rel_labels else 0)
            batch["rel_labels"] = torch.tensor(rel_labels, dtype=torch.float).reshape(-1, n)
            batch["rel_mask"] = torch.tensor(rel_mask, dtype=torch.float).reshape(-1, n)
            batch["attr_label"] = torch.tensor(attr_label, dtype=torch.long)
        return batch
