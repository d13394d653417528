"""Relation inference with a saved :class:`RelationModel`: relations, attributes, casualty records.

One encoder pass per window of text, its candidate pairs as levitated markers
(``relation_data``); the windows of all the texts in a call are batched together. A pair may hold several relations: every label whose probability
reaches the threshold is kept. A symmetric label is reported once per pair, the
higher of its two directions' scores, head and tail in text order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from conflict_ie.casualties import parse_count
from conflict_ie.documents import Span
from conflict_ie.errors import ConfigError
from conflict_ie.relation_data import DESIGN, CandidateStats, RelationCollator, RelationEncoder
from conflict_ie.relation_model import RelationModel
from conflict_ie.results import CasualtyRecord, Entity, PredictedRelation, Prediction
from conflict_ie.runtime import make_runner, sigmoid, softmax
from conflict_ie.schema import CasualtyRecordSpec, LabelSchema

#: ``(head, tail, label, score)`` of one predicted relation between spans.
SpanRelation = tuple[Span, Span, str, float]

#: Pairs packed into one pass at inference. A pair's markers see the text and each other only, and
#: the text sees no marker, so packing changes no score (``test_relation_inference``); training packs
#: ``relations.max_pairs`` to bound its memory, but at inference each extra pass of a window repeats its text.
#: Packing up to 128 (at most 512 marker tokens beside the text) instead of 32 took the relation step
#: on the benchmark's texts from 15.3 s to 13.5 s, fp32 on 2 idle cores (``scripts/bench_relation_packing.py``).
INFERENCE_MAX_PAIRS = 128


def check_relation_schema(model_config, schema: LabelSchema, where: str) -> None:
    """Raise if the relation model's labels or attributes are not the schema's, naming the difference."""
    theirs, mine = list(model_config.relation_labels), list(schema.relation_labels)
    problems = []
    if theirs != mine:
        problems.append(f"relations only in the checkpoint {sorted(set(theirs) - set(mine))}, only in the schema "
                        f"{sorted(set(mine) - set(theirs))}" + (" (same labels, other order)"
                                                               if set(theirs) == set(mine) else ""))
    for a in model_config.attributes:
        attr = schema.attribute(a["name"])
        if attr is None or list(attr.choices) != list(a["choices"]):
            problems.append(f"attribute {a['name']!r} has choices {a['choices']} in the checkpoint and "
                            f"{list(attr.choices) if attr else 'does not exist'} in the schema")
    if problems:
        raise ConfigError(f"the relation model in {where} does not match the schema: " + "; ".join(problems))


class RelationExtractor:
    """Relations among given entity spans, and their per-region attributes.

    ``max_pairs``: candidate pairs (an attribute span counts as one) packed into one pass; the scores
    do not depend on it, only the speed and the memory of a pass do.

    Example:
        >>> # rx = RelationExtractor.from_pretrained("runs/demo/relations", schema=schema)
        >>> # rels, attrs = rx.classify(text, spans)
    """

    def __init__(self, model: RelationModel, tokenizer, schema: LabelSchema, *, threshold: float | None = None,
                 device: str | None = None, precision: str = "fp32", backend: str = "torch",
                 cache: Path | None = None, max_pairs: int = INFERENCE_MAX_PAIRS):
        cfg = model.config
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.eval().to(self.device)
        # The encoder runs at the chosen precision and backend; the small heads stay in float32.
        self._encode = make_runner(self.model.encoder, "last_hidden_state", precision=precision, backend=backend,
                                   cache=cache, name="relations",
                                   inputs=("input_ids", "attention_mask", "position_ids", "token_type_ids"))
        self.schema = schema
        self.threshold = float(cfg.threshold if threshold is None else threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"the relation threshold is a probability in [0, 1], got {self.threshold}")
        self.encoder = RelationEncoder(
            tokenizer, schema, cfg.max_input_tokens, cfg.max_sentence_distance, cfg.max_token_distance,
            attributes=tuple(schema.attribute(a["name"]) for a in cfg.attributes),
            max_pairs=max_pairs, markers=getattr(cfg, "markers", "start_end"))
        self._collate = RelationCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self._symmetric = {r.label for r in schema.relations if r.symmetric}

    @classmethod
    def from_pretrained(cls, path: str | Path, *, schema: LabelSchema, threshold: float | None = None,
                        device: str | None = None, precision: str = "fp32",
                        backend: str = "torch") -> "RelationExtractor":
        """Load a relation model folder (``save_pretrained`` output plus its tokenizer); ONNX exports
        are cached in ``path/../onnx`` (see :mod:`conflict_ie.runtime`)."""
        from transformers import AutoTokenizer

        path = Path(path)
        model = RelationModel.from_pretrained(path, use_safetensors=True)
        if getattr(model.config, "design", "per_pair") != DESIGN:
            raise ConfigError(f"the relation model in {path} was trained with the older design "
                              f"({model.config.design!r}), which this version no longer reads: retrain it "
                              "(conflict-ie train), or predict entities only (relations=False)")
        check_relation_schema(model.config, schema, str(path))
        tokenizer = AutoTokenizer.from_pretrained(path)
        return cls(model, tokenizer, schema, threshold=threshold, device=device, precision=precision, backend=backend,
                   cache=path.parent / "onnx")

    @torch.inference_mode()
    def _run(self, windows: list[dict[str, Any]], batch_size: int) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """Per window row: its pairs' relation probabilities and, per attribute span, the choice
        probabilities of that span's attribute."""
        out: list[Any] = [None] * len(windows)
        # Longest first, so that a batch pads to windows of about its own length.
        order = sorted(range(len(windows)), key=lambda i: -len(windows[i]["input_ids"]))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            rows = [windows[j] for j in idx]
            batch = {k: v.to(self.device) for k, v in self._collate(rows).items()}
            states = self._encode(batch["input_ids"], batch["attention_mask"], batch["position_ids"],
                                  torch.zeros_like(batch["input_ids"])).to(self.device)
            res = self.model.heads(states, batch["pair_index"], batch["attr_index"], batch["pair_between"])
            for j, probs in zip(idx, split_by_row(rows, res)):
                out[j] = probs
        return out

    def classify_many(self, items: Sequence[tuple[str, Sequence[Span]]], batch_size: int = 16,
                      stats: CandidateStats | None = None) -> list[tuple[list[SpanRelation], dict[str, tuple]]]:
        """:meth:`classify` for several ``(text, spans)`` at once, their windows batched together."""
        enc = self.encoder
        stats = stats if stats is not None else CandidateStats()
        rows, owners = [], []
        for n, (text, spans) in enumerate(items):
            for window, jobs in enc.jobs(enc.prepare(text), spans, stats=stats):
                for packed in enc.pack(window, jobs, stats):
                    rows.append(packed)
                    owners.append((n, [j for j in packed["jobs"] if j[0] == "pair"],
                                   [j for j in packed["jobs"] if j[0] == "attr"]))
        found: list[dict[tuple[str, str, str], SpanRelation]] = [{} for _ in items]
        attributes: list[dict[str, list]] = [{} for _ in items]
        for (n, pairs, attrs), (rel, attr) in zip(owners, self._run(rows, batch_size)):
            for (_, h, t), p in zip(pairs, rel):
                for k, label in enumerate(enc.relation_labels):
                    score = float(p[k])
                    if score < self.threshold or not self.schema.allows(label, h.label, t.label):
                        continue
                    # A symmetric label: both directions were scored; keep the pair once, in text order.
                    a, b = sorted((h, t), key=lambda s: (s.start, s.end, s.id)) if label in self._symmetric \
                        else (h, t)
                    key = (a.id, b.id, label)
                    if key not in found[n] or found[n][key][3] < score:
                        found[n][key] = (a, b, label, score)
            for (_, span, k), p in zip(attrs, attr):
                attribute = enc.attributes[k]
                best = int(p.argmax())
                attributes[n].setdefault(span.id, []).append((attribute.name, attribute.choices[best], float(p[best])))
        return [(sorted(f.values(), key=lambda r: (r[0].start, r[1].start, r[2])), {k: tuple(v) for k, v in a.items()})
                for f, a in zip(found, attributes)]

    def classify(self, text: str, spans: Sequence[Span], batch_size: int = 16,
                 stats: CandidateStats | None = None) -> tuple[list[SpanRelation], dict[str, tuple]]:
        """Relations among ``spans`` of ``text`` and the attributes of each span.

        Returns ``(relations, attributes)``: ``relations`` is ``[(head, tail, label, score)]``;
        ``attributes`` maps a span id to ``((name, value, score), ...)``. ``stats``, when given,
        counts the candidates, those no window could hold, and the windows encoded.

        Example:
            >>> # rels, attrs = RelationExtractor.from_pretrained("runs/demo/relations", schema=s).classify(t, spans)
        """
        return self.classify_many([(text, spans)], batch_size, stats)[0]

    def add_to(self, preds: Sequence[Prediction], batch_size: int = 16,
               stats: CandidateStats | None = None) -> list[Prediction]:
        """Give predictions (from the entity step) relations, attributes and casualty records."""
        out = []
        items = [(pred.text, [Span(e.id, e.start, e.end, e.label) for e in pred.entities]) for pred in preds]
        for pred, (relations, attributes) in zip(preds, self.classify_many(items, batch_size, stats)):
            entities = tuple(
                Entity(e.label, e.start, e.end, e.text, e.score, e.id,
                       tuple((name, value) for name, value, _ in attributes.get(e.id, ())))
                for e in pred.entities
            )
            by_id = {e.id: e for e in entities}
            rels = tuple(PredictedRelation(by_id[h.id], by_id[t.id], label, score, label in self._symmetric)
                         for h, t, label, score in relations)
            out.append(Prediction(pred.text, entities, rels,
                                  casualty_records(entities, rels, self.schema.casualty_records)))
        return out


def split_by_row(rows: Sequence[dict[str, Any]],
                 heads: dict[str, Any]) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """A batch's head outputs (``RelationModel.heads``) cut back into its rows: per row its pairs'
    relation probabilities and, per attribute span, the choice probabilities of its attribute.

    Example:
        >>> rows = [{"pairs": [[5, 7]], "attrs": []}, {"pairs": [], "attrs": [[4, 0]]}]
        >>> out = split_by_row(rows, {"relation_logits": torch.zeros(1, 2), "attribute_logits": [torch.zeros(1, 2)]})
        >>> out[0][0].tolist(), out[1][1][0].tolist()
        ([[0.5, 0.5]], [0.5, 0.5])
    """
    rel = sigmoid(heads["relation_logits"])
    attr = [softmax(a) for a in heads["attribute_logits"]]
    out, p, a = [], 0, 0
    for row in rows:
        n_pairs, n_attrs = len(row["pairs"]), len(row["attrs"])
        out.append((rel[p : p + n_pairs], [attr[k][a + m] for m, (_, k) in enumerate(row["attrs"])]))
        p, a = p + n_pairs, a + n_attrs
    return out


def casualty_records(entities: Sequence[Entity], relations: Sequence[PredictedRelation],
                     spec: CasualtyRecordSpec | None) -> tuple[CasualtyRecord, ...]:
    """One record per casualty figure: counts from its text; type, place and perpetrator as the
    schema's ``casualty_records`` names them (the most confident relation of each kind).

    Example:
        >>> f = Entity("CASUALTY_FIGURE", 0, 8, "12 dead", 0.9, "e1", (("casualty_type", "killed"),))
        >>> spec = CasualtyRecordSpec("CASUALTY_FIGURE", "casualty_type", "LOCATED_IN", "PERPETRATOR")
        >>> r = casualty_records([f], [], spec)[0]
        >>> r.count_min, r.casualty_type, r.location
        (12, 'killed', None)
    """
    if spec is None:
        return ()

    def best(entity: Entity, label: str) -> str | None:
        cands = [r for r in relations if label and r.head.id == entity.id and r.label == label]
        return max(cands, key=lambda r: r.score).tail.text if cands else None

    records = []
    for e in entities:
        if e.label != spec.figure:
            continue
        count = parse_count(e.text)
        records.append(CasualtyRecord(e.text, e.start, e.end, count.count_min, count.count_max, count.approximate,
                                      e.attribute(spec.type_attribute) if spec.type_attribute else None,
                                      best(e, spec.location_relation), best(e, spec.perpetrator_relation),
                                      e.score))
    return tuple(records)
