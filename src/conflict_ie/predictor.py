"""``Predictor``: entities (and, when the run has them, relations and casualty records) for any text.

    >>> from conflict_ie import Predictor                      # doctest: +SKIP
    >>> p = Predictor.from_pretrained("runs/demo")              # doctest: +SKIP
    >>> doc = p.predict("Wagner Group fighters shelled Bakhmut.")  # doctest: +SKIP
    >>> [(e.label, e.text) for e in doc.entities]               # doctest: +SKIP

Long texts are cut into overlapping windows (``stride`` tokens shared) and every
word is read from the window where it is most central, so no entity at a window
edge is lost or doubled. ``predict_batch`` pools the windows of all texts, sorts
them by length and pads per batch, which is where the speed over
``transformers.pipeline`` comes from.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from conflict_ie.alignment import (
    DECODINGS,
    WORD_PROBS,
    TokenizedDocument,
    decode_words,
    special_tokens,
    spans_from_word_tags,
    tokenize_document,
    window_bounds,
)
from conflict_ie.documents import Document, Relation, Span
from conflict_ie.errors import ConfigError, InputError
from conflict_ie.schema import EntityLabel, LabelSchema

INFERENCE_FILE = "conflict_ie.json"


@dataclass(frozen=True)
class Entity:
    """A predicted entity; ``text == input[start:end]``."""

    label: str
    start: int
    end: int
    text: str
    score: float
    id: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictedRelation:
    """A directed relation between two predicted entities."""

    head: Entity
    tail: Entity
    label: str
    score: float


@dataclass(frozen=True)
class CasualtyRecord:
    """One casualty figure as an event-data row."""

    text: str
    start: int
    end: int
    count_min: int | None
    count_max: int | None
    approximate: bool
    casualty_type: str | None
    location: str | None
    perpetrator: str | None
    score: float = 1.0


@dataclass(frozen=True)
class Prediction:
    """What the predictor found in one text."""

    text: str
    entities: tuple[Entity, ...]
    relations: tuple[PredictedRelation, ...] = ()
    casualties: tuple[CasualtyRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain lists of dicts (``pandas.DataFrame(d["entities"])`` works)."""
        return {
            "text": self.text,
            "entities": [asdict(e) for e in self.entities],
            "relations": [
                {"head": r.head.id, "head_text": r.head.text, "tail": r.tail.id, "tail_text": r.tail.text,
                 "label": r.label, "score": r.score}
                for r in self.relations
            ],
            "casualties": [asdict(c) for c in self.casualties],
        }

    def to_document(self, doc_id: str = "prediction") -> Document:
        spans = tuple(Span(e.id, e.start, e.end, e.label, dict(e.attributes)) for e in self.entities)
        rels = tuple(Relation(r.head.id, r.tail.id, r.label) for r in self.relations)
        return Document(doc_id, self.text, spans, rels)

    def to_labelstudio(self, model_version: str = "conflict_ie") -> dict[str, Any]:
        """A Label Studio prediction (``{"result", "score", "model_version"}``) for pre-annotation."""
        from conflict_ie.labelstudio import document_results

        scores = {e.id: e.score for e in self.entities}
        result = document_results(self.to_document(), scores=scores)
        rel_scores = iter(r.score for r in self.relations)
        for item in result:
            if item["type"] == "relation":
                item["score"] = next(rel_scores)
        mean = float(np.mean([e.score for e in self.entities])) if self.entities else 0.0
        return {"result": result, "score": mean, "model_version": model_version}


@dataclass
class NerOutput:
    """Entity decoding of one text: words, raw word tags (for lenient scoring), spans."""

    tdoc: TokenizedDocument
    word_tags: list[str]
    word_scores: np.ndarray
    spans: list[tuple[Span, float]]


def _as_text(text: Any) -> str:
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"the text is not UTF-8 ({exc.reason} at byte {exc.start}); decode it first") from None
    if not isinstance(text, str):
        raise InputError(f"expected a str, got {type(text).__name__}")
    return text


def resolve_model_dir(path_or_id: str | os.PathLike, revision: str | None = None) -> Path:
    """A local folder, or a hub id resolved through ``huggingface_hub`` (its cache works offline)."""
    path = Path(path_or_id)
    if path.exists():
        return path
    if str(path_or_id).count("/") == 1 and not str(path_or_id).startswith((".", "/")):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(str(path_or_id), revision=revision))
        except Exception as exc:  # the hub client raises many kinds; all mean "cannot get it"
            raise InputError(
                f"cannot load {path_or_id!r}: not a local folder, and the hub said: {type(exc).__name__}: {exc}"
            ) from None
    raise InputError(f"model not found: {path_or_id} (not a folder; a hub id looks like OWNER/NAME)")


def schema_from_id2label(id2label: dict[int, str], name: str = "checkpoint") -> LabelSchema:
    labels = []
    for i in sorted(id2label):
        tag = id2label[i]
        if tag.startswith("B-") and tag[2:] not in labels:
            labels.append(tag[2:])
    return LabelSchema(name=name, entities=tuple(EntityLabel(l) for l in labels))


class Predictor:
    """Entity (and relation/casualty) extraction from raw text with a trained run."""

    def __init__(self, model, tokenizer, schema: LabelSchema, *, max_length: int = 256, stride: int = 64,
                 decoding: str = "argmax", word_probs: str = "first", relation_model=None, device: str | None = None):
        if decoding not in DECODINGS or word_probs not in WORD_PROBS:
            raise ConfigError(f"decoding must be one of {DECODINGS} and word_probs one of {WORD_PROBS}, "
                              f"got {decoding!r} and {word_probs!r}")
        self.model = model.eval()
        self.decoding = decoding
        self.word_probs = word_probs
        self.tokenizer = tokenizer
        self.schema = schema
        self.max_length = max_length
        self.stride = stride
        self.relation_model = relation_model
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}
        self._prefix, self._suffix = special_tokens(tokenizer)
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        expected = schema.id2label
        if self.id2label != expected:
            raise ConfigError(
                f"the model's id2label {self.id2label} does not match the schema's BIO tags {expected}"
            )

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | os.PathLike,
        *,
        schema: LabelSchema | str | None = None,
        revision: str | None = None,
        device: str | None = None,
        relations: bool = True,
        decoding: str | None = None,
    ) -> "Predictor":
        """Load a run folder, a checkpoint folder or a hub id. Only safetensors weights, no remote code.

        ``schema`` (optional) must agree with the checkpoint's labels; a mismatch is an
        error naming the difference. ``decoding`` overrides the run's own (``viterbi`` or
        ``argmax``; a folder without ``conflict_ie.json`` decodes by argmax, as a plain
        ``transformers`` pipeline does).
        """
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        root = resolve_model_dir(path_or_id, revision)
        if not (root / "config.json").exists():
            raise InputError(f"{root} has no config.json: not a run or checkpoint folder")
        if not any(root.glob("*.safetensors")):
            found = sorted(p.name for p in root.glob("*.bin"))
            raise InputError(
                f"{root} has no safetensors weights" + (f" (found {found}; pickled weights are not loaded)" if found
                                                        else "")
            )
        model = AutoModelForTokenClassification.from_pretrained(root, use_safetensors=True, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(root, trust_remote_code=False)
        own = LabelSchema.load(root / "schema.yaml") if (root / "schema.yaml").exists() else schema_from_id2label(
            {int(k): v for k, v in model.config.id2label.items()})
        if schema is not None:
            given = LabelSchema.load(schema) if isinstance(schema, (str, os.PathLike)) else schema
            # A bare Trainer checkpoint knows its entity tags only (from id2label).
            given.check_compatible(own, relations=bool(own.relations))
        settings = json.loads((root / INFERENCE_FILE).read_text()) if (root / INFERENCE_FILE).exists() else {}
        relation_model = None
        if relations and (root / "relations").is_dir():
            from conflict_ie.relations import RelationExtractor

            relation_model = RelationExtractor.from_pretrained(root / "relations", schema=own, device=device)
        return cls(
            model,
            tokenizer,
            own,
            max_length=int(settings.get("max_length", min(256, tokenizer.model_max_length))),
            stride=int(settings.get("stride", 64)),
            decoding=decoding or settings.get("decoding", "argmax"),
            word_probs=settings.get("word_probs", "first"),
            relation_model=relation_model,
            device=device,
        )

    # --------------------------------------------------------------- prediction
    def predict(self, text: str) -> Prediction:
        """Entities, relations and casualty records of one text of any length.

        Example:
            >>> # p.predict("Wagner Group fighters shelled Bakhmut.").entities[0].label
        """
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Sequence[str], batch_size: int = 8) -> list[Prediction]:
        """Predict many texts; windows of all texts are pooled, sorted by length and batched.

        8 windows a batch was the fastest on a 2-core CPU (16, 32 and 64 were 4-35% slower);
        on a GPU, larger batches pay off.
        """
        if isinstance(texts, (str, bytes)):
            raise InputError("predict_batch takes a list of texts; use predict() for one text")
        texts = [_as_text(t) for t in texts]
        outputs = self.ner(texts, batch_size=batch_size)
        preds = []
        for text, out in zip(texts, outputs):
            entities = tuple(
                Entity(s.label, s.start, s.end, text[s.start : s.end], float(score), id=f"e{i + 1}")
                for i, (s, score) in enumerate(out.spans)
            )
            preds.append(Prediction(text, entities))
        if self.relation_model is not None:
            preds = self.relation_model.add_to(preds, batch_size=batch_size)
        return preds

    @torch.inference_mode()
    def ner(self, texts: Sequence[str], batch_size: int = 8) -> list[NerOutput]:
        """Entity decoding with everything the evaluation needs (raw word tags, scores)."""
        content = self.max_length - len(self._prefix) - len(self._suffix)
        tdocs, all_bounds, jobs = [], [], []
        for d, text in enumerate(texts):
            tdoc = tokenize_document(text, self.tokenizer)
            bounds = window_bounds(tdoc, content, self.stride) if tdoc.ids else []
            tdocs.append(tdoc)
            all_bounds.append(bounds)
            jobs += [(d, k, we - ws) for k, (ws, we) in enumerate(bounds)]
        probs: list[list[np.ndarray | None]] = [[None] * len(b) for b in all_bounds]
        # Longest first: padding per batch stays small, and memory peaks early if at all.
        jobs.sort(key=lambda j: -j[2])
        for i in range(0, len(jobs), batch_size):
            batch = jobs[i : i + batch_size]
            width = batch[0][2] + len(self._prefix) + len(self._suffix)
            ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, (d, k, n) in enumerate(batch):
                ws, we = all_bounds[d][k]
                row = self._prefix + tdocs[d].ids[ws:we] + self._suffix
                ids[r, : len(row)] = torch.tensor(row)
                mask[r, : len(row)] = 1
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            p = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            for r, (d, k, n) in enumerate(batch):
                probs[d][k] = p[r, len(self._prefix) : len(self._prefix) + n]
        outputs = []
        for text, tdoc, bounds, doc_probs in zip(texts, tdocs, all_bounds, probs):
            if not tdoc.words:
                outputs.append(NerOutput(tdoc, [], np.zeros(0), []))
                continue
            tags, scores = decode_words(tdoc, bounds, doc_probs, self.id2label, decoding=self.decoding,
                                        word_probs=self.word_probs)
            spans = spans_from_word_tags(tags, tdoc.words, scores, prefix="e", text=text)
            outputs.append(NerOutput(tdoc, tags, scores, spans))
        return outputs
