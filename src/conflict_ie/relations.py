"""Relations between entities and the casualty-type attribute (Zhong & Chen 2021, "PURE").

For a candidate pair, typed markers go around the two spans in their context
(``<S:OFFICIAL> Gladkov </S:OFFICIAL> ... <O:LOCATION> Belgorod </O:LOCATION>``);
an encoder reads the marked text and a linear layer classifies the concatenated
start-marker states into the schema's relation labels or ``NONE``. Direction
matters: (A, B) and (B, A) are different candidates, each only if the schema
allows its label pair. The casualty type is a second head on the same encoder:
the figure alone is marked and its start-marker state is classified.

Candidates are pairs in the same or a neighbouring sentence (configurable), with
at most ``max_token_distance`` tokens between them. Training uses gold entities;
``NONE`` pairs are subsampled by ``negative_ratio`` per positive pair.
"""

from __future__ import annotations

import bisect
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from conflict_ie.casualties import parse_count
from conflict_ie.documents import Document, Span
from conflict_ie.errors import ConfigError
from conflict_ie.schema import LabelSchema

NONE = "NONE"
ATTRIBUTE = "casualty_type"  # the attribute the second head predicts, when the schema has it
HEADS_FILE = "heads.safetensors"
SETTINGS_FILE = "relation_config.json"

# A plain regex sentence splitter: the usual libraries (nltk punkt, spaCy) need model downloads that
# this package cannot make at run time, and candidate distance only needs sentence *indices*.
_SENT_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])|\n+")


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """Character ranges of sentences (a new line always ends one).

    Example:
        >>> sentence_bounds("Kyiv was hit. Dnipro too.\\nLater, calm.")
        [(0, 13), (14, 25), (26, 38)]
    """
    out, start = [], 0
    for m in _SENT_END.finditer(text):
        if m.start() > start:
            out.append((start, m.start()))
        start = m.end()
    if start < len(text):
        out.append((start, len(text)))
    return out or [(0, len(text))]


def sentence_of(ends: list[int], pos: int) -> int:
    """Index of the sentence holding character ``pos``, given the sentences' end offsets.

    Example:
        >>> sentence_of([13, 25, 38], 14)
        1
    """
    return min(bisect.bisect_right(ends, pos), len(ends) - 1)


def marker_tokens(schema: LabelSchema) -> list[str]:
    """The typed marker strings added to the tokenizer as special tokens."""
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


def candidate_pairs(doc: Document, spans: Sequence[Span], schema: LabelSchema, *, max_sentence_distance: int,
                    max_token_distance: int, token_starts: np.ndarray | None = None) -> list[tuple[Span, Span]]:
    """Ordered (head, tail) pairs the schema allows, close enough in sentences and tokens.

    ``token_starts`` (sub-token start offsets of the document) measures distance in tokens; without
    it, white-space words are counted.

    Example:
        >>> s = LabelSchema.load("conflict")
        >>> d = Document("1", "Gladkov of Belgorod spoke. Much later, in Kyiv.")
        >>> sp = [Span("a", 0, 7, "OFFICIAL"), Span("b", 11, 19, "LOCATION"), Span("c", 42, 46, "LOCATION")]
        >>> [(h.id, t.id) for h, t in candidate_pairs(d, sp, s, max_sentence_distance=0, max_token_distance=50)]
        [('a', 'b')]
    """
    ends = [e for _, e in sentence_bounds(doc.text)]
    sent = {s.id: sentence_of(ends, s.start) for s in spans}
    allowed = schema.allowed_pairs
    if token_starts is None:
        token_starts = np.array([m.start() for m in re.finditer(r"\S+", doc.text)])
    tok_index = {s.id: (int(np.searchsorted(token_starts, s.start, "right")), int(np.searchsorted(token_starts,
                                                                                                   s.end, "left")))
                 for s in spans}
    # Index spans by sentence so that a long article costs pairs per neighbourhood, not n squared.
    by_sentence: dict[int, list[Span]] = {}
    for sp in spans:
        by_sentence.setdefault(sent[sp.id], []).append(sp)
    out = []
    for h in spans:
        near = [t for k in range(sent[h.id] - max_sentence_distance, sent[h.id] + max_sentence_distance + 1)
                for t in by_sentence.get(k, ())]
        for t in sorted(near, key=lambda x: (x.start, x.end)):
            if h.id == t.id or (h.label, t.label) not in allowed:
                continue
            first, second = (h, t) if h.start <= t.start else (t, h)
            gap = max(0, tok_index[second.id][0] - tok_index[first.id][1])
            if gap > max_token_distance:
                continue
            out.append((h, t))
    return out


class RelationModel(nn.Module):
    """Encoder + relation head over [head-marker; tail-marker] + attribute head over the head marker."""

    def __init__(self, encoder, n_relations: int, n_attribute: int):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(0.1)
        self.relation_head = nn.Linear(2 * hidden, n_relations)
        self.attribute_head = nn.Linear(hidden, max(n_attribute, 1))

    def forward(self, input_ids, attention_mask, head_pos, tail_pos, task, labels=None):
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(states.shape[0], device=states.device)
        h = self.dropout(states[rows, head_pos])
        t = self.dropout(states[rows, tail_pos])
        rel_logits = self.relation_head(torch.cat([h, t], dim=-1))
        attr_logits = self.attribute_head(h)
        out = {"relation_logits": rel_logits, "attribute_logits": attr_logits}
        if labels is not None:
            loss_fn = nn.CrossEntropyLoss()
            losses = []
            is_rel = task == 0
            if is_rel.any():
                losses.append(loss_fn(rel_logits[is_rel], labels[is_rel]))
            if (~is_rel).any():
                losses.append(loss_fn(attr_logits[~is_rel], labels[~is_rel]))
            out["loss"] = sum(losses) / len(losses)
        return out


class _Collator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows):
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r["input_ids"])] = torch.tensor(r["input_ids"])
            mask[i, : len(r["input_ids"])] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        for key in ("head_pos", "tail_pos", "task", "labels"):
            if key in rows[0]:
                batch[key] = torch.tensor([r[key] for r in rows], dtype=torch.long)
        return batch


class Encoder:
    """Turns (document, head, tail) into model inputs; shared by training and inference."""

    def __init__(self, tokenizer, schema: LabelSchema, *, max_length: int, max_sentence_distance: int,
                 max_token_distance: int):
        self.tokenizer = tokenizer
        self.schema = schema
        self.max_length = max_length
        self.max_sentence_distance = max_sentence_distance
        self.max_token_distance = max_token_distance
        self.relation_labels = [NONE, *schema.relation_labels]
        attr = schema.attribute(ATTRIBUTE)
        self.attribute_choices = list(attr.choices) if attr else []
        self.attribute_label = attr.applies_to[0] if attr and attr.applies_to else None
        self._cached_text: str | None = None
        self._cached: tuple[list[tuple[int, int]], list[int]] = ([], [])

    def _sentences(self, text: str) -> tuple[list[tuple[int, int]], list[int]]:
        # Every candidate of a document needs its sentences: split once per text, not per pair.
        if self._cached_text is not text:
            bounds = sentence_bounds(text)
            self._cached = (bounds, [e for _, e in bounds])
            self._cached_text = text
        return self._cached

    def encode(self, doc: Document, head: Span, tail: Span | None) -> dict[str, Any] | None:
        """Model inputs for one candidate (``tail=None``: the attribute of ``head``), or None if the
        markers do not fit in ``max_length`` tokens."""
        bounds, ends = self._sentences(doc.text)
        spans = [head] + ([tail] if tail else [])
        first = min(sentence_of(ends, s.start) for s in spans)
        last = max(sentence_of(ends, s.end - 1) for s in spans)
        ctx = (bounds[first][0], bounds[last][1])
        for _ in range(3):
            marked = insert_markers(doc.text, ctx, head, tail)
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

    def pairs(self, doc: Document, spans: Sequence[Span]) -> list[tuple[Span, Span]]:
        return candidate_pairs(doc, spans, self.schema, max_sentence_distance=self.max_sentence_distance,
                               max_token_distance=self.max_token_distance)


def training_rows(docs: Sequence[Document], enc: Encoder, *, negative_ratio: float, seed: int):
    """Relation rows (positives + subsampled NONE pairs) and attribute rows from gold documents."""
    rng = random.Random(seed)
    rows, stats = [], {"positive": 0, "negative_kept": 0, "negative_total": 0, "gold_out_of_reach": 0, "attribute": 0}
    for doc in docs:
        gold = {(r.head, r.tail): r.label for r in doc.relations}
        pairs = enc.pairs(doc, doc.spans)
        reach = {(h.id, t.id) for h, t in pairs}
        stats["gold_out_of_reach"] += sum(1 for k in gold if k not in reach)
        pos, neg = [], []
        for h, t in pairs:
            (pos if (h.id, t.id) in gold else neg).append((h, t))
        stats["negative_total"] += len(neg)
        keep = min(len(neg), int(round(negative_ratio * max(len(pos), 1))))
        neg = rng.sample(neg, keep)
        for h, t in pos + neg:
            row = enc.encode(doc, h, t)
            if row is None:
                continue
            row.update(task=0, labels=enc.relation_labels.index(gold.get((h.id, t.id), NONE)))
            rows.append(row)
            stats["positive" if (h.id, t.id) in gold else "negative_kept"] += 1
        if enc.attribute_label:
            for s in doc.spans:
                value = s.attributes.get(ATTRIBUTE)
                if s.label == enc.attribute_label and value in enc.attribute_choices:
                    row = enc.encode(doc, s, None)
                    if row is not None:
                        row.update(task=1, labels=enc.attribute_choices.index(value))
                        rows.append(row)
                        stats["attribute"] += 1
    rng.shuffle(rows)
    return rows, stats


def train_relations(config, corpus, schema: LabelSchema, out: Path) -> dict[str, Any]:
    """Train the relation + casualty-type model on gold entities with ``transformers.Trainer``."""
    import datasets
    from transformers import AutoModel, AutoTokenizer, Trainer, TrainingArguments, set_seed

    from conflict_ie.config import resolve_base_model
    from conflict_ie.corpus import documents_of
    from conflict_ie.training import device_arguments

    rc = config.relations
    set_seed(config.seed)
    base = resolve_base_model(config.base_model)
    # A fresh tokenizer: marker tokens are added to this copy only, never to a shared one.
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.add_special_tokens({"additional_special_tokens": marker_tokens(schema)})
    encoder = AutoModel.from_pretrained(base)
    encoder.resize_token_embeddings(len(tokenizer))
    enc = Encoder(tokenizer, schema, max_length=rc.max_length, max_sentence_distance=rc.max_sentence_distance,
                  max_token_distance=rc.max_token_distance)
    rows, stats = training_rows(documents_of(corpus["train"], schema), enc, negative_ratio=rc.negative_ratio,
                                seed=config.seed)
    if not rows:
        raise ConfigError("no relation or attribute examples in the training split")
    model = RelationModel(encoder, len(enc.relation_labels), len(enc.attribute_choices))
    ds = datasets.Dataset.from_list(rows)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"), learning_rate=rc.learning_rate, num_train_epochs=rc.epochs,
        max_steps=rc.max_steps, per_device_train_batch_size=rc.batch_size, warmup_steps=rc.warmup,
        weight_decay=rc.weight_decay, save_strategy="no", report_to=list(config.ner.report_to),
        logging_steps=config.ner.logging_steps, seed=config.seed, data_seed=config.seed,
        remove_unused_columns=False,  # the model takes head_pos/tail_pos/task, which Trainer cannot see
        **device_arguments(),
    )
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=_Collator(tokenizer.pad_token_id))
    trainer.train()
    if trainer.is_world_process_zero():
        save_relation_model(model, tokenizer, enc, rc, out, stats)
    return stats


def save_relation_model(model: RelationModel, tokenizer, enc: Encoder, rc, out: Path, stats=None) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(out)
    tokenizer.save_pretrained(out)
    heads = {f"relation_head.{k}": v.contiguous() for k, v in model.relation_head.state_dict().items()}
    heads.update({f"attribute_head.{k}": v.contiguous() for k, v in model.attribute_head.state_dict().items()})
    save_file(heads, str(out / HEADS_FILE))
    settings = {
        "relation_labels": enc.relation_labels,
        "allowed_pairs": {r.label: [list(p) for p in r.pairs] for r in enc.schema.relations},
        "attribute": ATTRIBUTE if enc.attribute_choices else None,
        "attribute_label": enc.attribute_label,
        "attribute_choices": enc.attribute_choices,
        "max_length": enc.max_length,
        "max_sentence_distance": enc.max_sentence_distance,
        "max_token_distance": enc.max_token_distance,
        "threshold": rc.threshold,
        "training_examples": stats or {},
    }
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")


class RelationExtractor:
    """Inference with a saved relation model: relations, casualty types and casualty records."""

    def __init__(self, model: RelationModel, enc: Encoder, threshold: float, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.eval().to(self.device)
        self.enc = enc
        self.threshold = threshold
        self._collate = _Collator(enc.tokenizer.pad_token_id)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, schema: LabelSchema, device: str | None = None):
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        settings = json.loads((path / SETTINGS_FILE).read_text())
        theirs = settings["allowed_pairs"]
        mine = {r.label: [list(p) for p in r.pairs] for r in schema.relations}
        if theirs != mine or settings["relation_labels"] != [NONE, *schema.relation_labels]:
            only_ckpt = sorted(set(theirs) - set(mine))
            only_schema = sorted(set(mine) - set(theirs))
            differ = sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k])
            raise ConfigError(
                f"the relation model in {path} does not match the schema: relations only in the checkpoint "
                f"{only_ckpt}, only in the schema {only_schema}, with other allowed pairs {differ}"
            )
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
        model = RelationModel(encoder, len(settings["relation_labels"]), len(settings["attribute_choices"]))
        heads = load_file(str(path / HEADS_FILE))
        model.relation_head.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items()
                                             if k.startswith("relation_head.")})
        model.attribute_head.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items()
                                              if k.startswith("attribute_head.")})
        enc = Encoder(tokenizer, schema, max_length=settings["max_length"],
                      max_sentence_distance=settings["max_sentence_distance"],
                      max_token_distance=settings["max_token_distance"])
        return cls(model, enc, settings["threshold"], device)

    @torch.inference_mode()
    def _run(self, rows: list[dict[str, Any]], key: str, batch_size: int) -> np.ndarray:
        if not rows:
            return np.zeros((0, 1))
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
        out = [None] * len(rows)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            batch = {k: v.to(self.device) for k, v in self._collate([rows[j] for j in idx]).items()}
            probs = torch.softmax(self.model(**batch)[key].float(), -1).cpu().numpy()
            for j, p in zip(idx, probs):
                out[j] = p
        return np.stack(out)

    def classify(self, doc: Document, spans: Sequence[Span], batch_size: int = 16):
        """Relations among ``spans`` of ``doc`` and an attribute per span: ``(relations, attributes)``.

        ``relations`` is ``[(head, tail, label, score)]``; ``attributes`` maps span id -> (value, score).
        """
        pairs, rows = [], []
        for h, t in self.enc.pairs(doc, spans):
            row = self.enc.encode(doc, h, t)
            if row is not None:
                pairs.append((h, t))
                rows.append({**row, "task": 0})
        probs = self._run(rows, "relation_logits", batch_size)
        relations = []
        for (h, t), p in zip(pairs, probs):
            k = int(p.argmax())
            label = self.enc.relation_labels[k]
            if label != NONE and p[k] >= self.threshold and self.enc.schema.allows(label, h.label, t.label):
                relations.append((h, t, label, float(p[k])))
        attributes = {}
        if self.enc.attribute_label:
            targets = [s for s in spans if s.label == self.enc.attribute_label]
            arows, kept = [], []
            for s in targets:
                row = self.enc.encode(doc, s, None)
                if row is not None:
                    arows.append({**row, "task": 1})
                    kept.append(s)
            aprobs = self._run(arows, "attribute_logits", batch_size)
            for s, p in zip(kept, aprobs):
                attributes[s.id] = (self.enc.attribute_choices[int(p.argmax())], float(p.max()))
        return relations, attributes

    def add_to(self, preds, batch_size: int = 16):
        """Give predictions (from the NER step) relations, attributes and casualty records."""
        from conflict_ie.predictor import Entity, PredictedRelation, Prediction

        out = []
        for pred in preds:
            doc = Document("p", pred.text)
            spans = [Span(e.id, e.start, e.end, e.label) for e in pred.entities]
            relations, attributes = self.classify(doc, spans, batch_size)
            entities = tuple(
                Entity(e.label, e.start, e.end, e.text, e.score, e.id,
                       {ATTRIBUTE: attributes[e.id][0]} if e.id in attributes else {})
                for e in pred.entities
            )
            by_id = {e.id: e for e in entities}
            rels = tuple(PredictedRelation(by_id[h.id], by_id[t.id], label, score) for h, t, label, score in relations)
            out.append(Prediction(pred.text, entities, rels, casualty_records(entities, rels, self.enc)))
        return out


def casualty_records(entities, relations, enc: Encoder):
    """One record per casualty figure: counts from its text, type, place and perpetrator from relations."""
    from conflict_ie.predictor import CasualtyRecord

    if not enc.attribute_label:
        return ()

    def best(entity, label):
        """The most confident target of ``entity``'s relations with ``label``."""
        cands = [r for r in relations if r.head.id == entity.id and r.label == label]
        return max(cands, key=lambda r: r.score).tail.text if cands else None

    records = []
    for e in entities:
        if e.label != enc.attribute_label:
            continue
        count = parse_count(e.text)
        records.append(CasualtyRecord(e.text, e.start, e.end, count.count_min, count.count_max, count.approximate,
                                      e.attributes.get(ATTRIBUTE), best(e, "LOCATED_IN"), best(e, "PERPETRATOR"),
                                      e.score))
    return tuple(records)


# ------------------------------------------------------------------------- evaluation
def _rel_key(doc_id, head: Span, tail: Span, label: str):
    return (doc_id, head.start, head.end, head.label, tail.start, tail.end, tail.label, label)


def _rel_block(gold: set, pred: set, labels: Sequence[str]) -> dict[str, Any]:
    from conflict_ie.evaluation import prf

    per_label = {}
    for label in labels:
        g = {k for k in gold if k[-1] == label}
        p = {k for k in pred if k[-1] == label}
        per_label[label] = {**prf(len(g & p), len(p), len(g)), "support": len(g)}
    return {"micro": prf(len(gold & pred), len(pred), len(gold)), "per_label": per_label}


def relation_metrics(predictor, docs: Sequence[Document], pred_spans: Sequence[Sequence[Span]], batch_size=16):
    """``relations`` (gold entities and end to end, strict) and ``casualties`` blocks of ``metrics.json``."""
    rx: RelationExtractor = predictor.relation_model
    labels = predictor.schema.relation_labels
    gold, on_gold, e2e = set(), set(), set()
    type_right = count_right = n_found = 0
    worst: list[tuple[float, str]] = []
    for doc, spans in zip(docs, pred_spans):
        by_id = doc.span_by_id()
        gold_here = {_rel_key(doc.id, by_id[r.head], by_id[r.tail], r.label) for r in doc.relations}
        gold |= gold_here
        rels, _ = rx.classify(doc, doc.spans, batch_size)
        on_gold |= {_rel_key(doc.id, h, t, l) for h, t, l, _ in rels}
        rels_e2e, attrs = rx.classify(doc, spans, batch_size)
        pred_here = {_rel_key(doc.id, h, t, l) for h, t, l, _ in rels_e2e}
        e2e |= pred_here
        lines = []
        for g in doc.spans:
            if g.label != rx.enc.attribute_label:
                continue
            match = [p for p in spans if p.label == g.label and p.overlaps(g)]
            if not match:
                continue
            p = max(match, key=lambda x: min(x.end, g.end) - max(x.start, g.start))
            n_found += 1
            type_right += attrs.get(p.id, (None,))[0] == g.attributes.get(ATTRIBUTE)
            gc, pc = parse_count(doc.text[g.start:g.end]), parse_count(doc.text[p.start:p.end])
            count_right += (gc.count_min, gc.count_max) == (pc.count_min, pc.count_max)
            lines.append(f"  - casualty “{doc.text[p.start:p.end]}”: type {attrs.get(p.id, ('-',))[0]} "
                         f"(gold {g.attributes.get(ATTRIBUTE)}), count {pc.count_min}..{pc.count_max}")
        misses = len(gold_here - pred_here) + len(pred_here - gold_here)
        shown = [f"  - {doc.text[h.start:h.end]!r} --{l}--> {doc.text[t.start:t.end]!r} ({s:.2f})"
                 f"{'' if _rel_key(doc.id, h, t, l) in gold_here else ' ✗'}" for h, t, l, s in rels_e2e]
        worst.append((misses, "\n".join([f"### {doc.id}: {misses} relation errors (end to end)", ""] + shown[:25]
                                        + lines[:15] + [""])))
    worst.sort(key=lambda x: -x[0])
    metrics = {
        "relations": {"gold_entities": _rel_block(gold, on_gold, labels), "end_to_end": _rel_block(gold, e2e, labels)},
        "casualties": {"type_accuracy": type_right / n_found if n_found else 0.0,
                       "count_exact": count_right / n_found if n_found else 0.0, "n": n_found},
    }
    return metrics, {"worst_documents": [w for _, w in worst[:3]]}
