"""``Predictor``: entities (and, when the run has them, relations and casualty records) for any text.

    >>> from conflict_ie import Predictor                      # doctest: +SKIP
    >>> p = Predictor.from_pretrained("runs/demo")              # doctest: +SKIP
    >>> doc = p.predict("Wagner Group fighters shelled Bakhmut.")  # doctest: +SKIP
    >>> [(e.label, e.text) for e in doc.entities]               # doctest: +SKIP

Long texts are cut into overlapping windows (``stride`` tokens shared) and every
word is read from the window where it is most central, so no entity at a window
edge is lost or doubled. ``predict_batch`` pools the windows of a chunk of texts,
sorts them by length and pads per batch, which is where the speed over
``transformers.pipeline`` comes from; it works through the texts a chunk at a
time, so its memory is bounded by the chunk, and :meth:`Predictor.stream` yields
predictions in order for any number of texts.

A Predictor keeps no per-text state: one instance can serve several threads.
Predicted spans that hold no letter or digit (punctuation, emoji) are dropped.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
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
from conflict_ie.documents import Span
from conflict_ie.errors import ConfigError, InputError
from conflict_ie.results import Entity, Prediction
from conflict_ie.runtime import check_runtime, make_runner, softmax
from conflict_ie.schema import EntityLabel, LabelSchema

INFERENCE_FILE = "conflict_ie.json"
#: Texts per chunk in ``predict_batch`` and ``stream``: enough windows to fill batches well, few
#: enough that a chunk's tensors and results stay small.
CHUNK_SIZE = 64


@dataclass
class NerOutput:
    """Entity decoding of one text: words, raw word tags (for lenient scoring), spans, and each
    word's probabilities over the BIO tags, ``(n_words, n_tags)`` (for uncertainty scores)."""

    tdoc: TokenizedDocument
    word_tags: list[str]
    word_scores: np.ndarray
    spans: list[tuple[Span, float]]
    word_probs: np.ndarray | None = None


def as_text(text: Any) -> str:
    """A text as ``str``: UTF-8 bytes are decoded (a byte-order mark dropped, so offsets are the
    text's own), anything else but ``str`` is refused, and so are lone surrogates.

    Example:
        >>> as_text("\\ufeffKyiv".encode("utf-8"))
        'Kyiv'
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            return bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"the text is not UTF-8 ({exc.reason} at byte {exc.start}); decode it first") from None
    if not isinstance(text, str):
        raise InputError(f"expected a str, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"the text holds a lone surrogate (U+{ord(text[exc.start]):04X} at character "
                         f"{exc.start}), which no tokenizer reads; was it decoded with errors='surrogateescape'?"
                         ) from None
    return text


def _has_word_character(text: str) -> bool:
    return any(c.isalnum() for c in text)


def _show_progress(progress: bool | None, n: int | None) -> bool:
    """``progress=None``: a bar when there are many texts (more than a chunk, or an unknown number)
    and someone watches (a terminal, or a notebook kernel)."""
    if progress is not None:
        return bool(progress)
    watched = "ipykernel" in sys.modules or getattr(sys.stderr, "isatty", lambda: False)()
    return watched and (n is None or n > CHUNK_SIZE)


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
    """Entity (and relation/casualty) extraction from raw text with a trained run.

    ``threshold`` drops entities whose score (the mean word probability of their tags) is below it;
    ``relation_threshold`` overrides the run's relation threshold; ``progress`` shows a ``tqdm``
    bar in ``predict_batch`` and ``stream`` (``None``: when there are many texts and a terminal or
    notebook to show it in).
    """

    def __init__(self, model, tokenizer, schema: LabelSchema, *, max_length: int = 256, stride: int = 64,
                 decoding: str = "argmax", word_probs: str = "first", relation_model=None, device: str | None = None,
                 threshold: float = 0.0, progress: bool | None = None, precision: str = "fp32",
                 backend: str = "torch", cache: str | os.PathLike | None = None):
        if decoding not in DECODINGS or word_probs not in WORD_PROBS:
            raise ConfigError(f"decoding must be one of {DECODINGS} and word_probs one of {WORD_PROBS}, "
                              f"got {decoding!r} and {word_probs!r}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold is an entity score in [0, 1], got {threshold!r}")
        self.model = model.eval()
        self.decoding = decoding
        self.word_probs = word_probs
        self.tokenizer = tokenizer
        self.schema = schema
        self.max_length = max_length
        self.stride = stride
        self.threshold = float(threshold)
        self.progress = progress
        self.relation_model = relation_model
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.precision, self.backend = precision, backend
        self._forward = make_runner(self.model, "logits", precision=precision, backend=backend,
                                    cache=Path(cache) if cache else None, name="ner")
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
        threshold: float = 0.0,
        relation_threshold: float | None = None,
        progress: bool | None = None,
        precision: str = "fp32",
        backend: str = "torch",
    ) -> "Predictor":
        """Load a run folder, a checkpoint folder or a hub id. Only safetensors weights, no remote code.

        ``schema`` (optional) must agree with the checkpoint's labels; a mismatch is an
        error naming the difference. ``decoding`` overrides the run's own (``viterbi`` or
        ``argmax``; a folder without ``conflict_ie.json`` decodes by argmax, as a plain
        ``transformers`` pipeline does). ``threshold`` and ``relation_threshold``: see the class.
        ``precision`` (``fp32``, ``bf16``, ``int8``) and ``backend`` (``torch``, ``torch-compile``,
        ``onnxruntime``) choose how both models run (:mod:`conflict_ie.runtime`; ``torch-compile``
        compiles them here, ONNX exports are cached in ``RUN/onnx``); an unsupported pair is an
        error naming the ones there are.

        Example:
            >>> # Predictor.from_pretrained("runs/demo", threshold=0.5, relation_threshold=0.7)
            >>> # Predictor.from_pretrained("runs/demo", precision="int8", backend="onnxruntime")
        """
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        check_runtime(precision, backend)  # before loading anything: a typo should cost nothing
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
            from conflict_ie.relation_inference import RelationExtractor

            relation_model = RelationExtractor.from_pretrained(root / "relations", schema=own,
                                                               threshold=relation_threshold, device=device,
                                                               precision=precision, backend=backend)
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
            threshold=threshold,
            progress=progress,
            precision=precision,
            backend=backend,
            cache=root / "onnx",
        )

    # --------------------------------------------------------------- prediction
    def predict(self, text: str) -> Prediction:
        """Entities, relations and casualty records of one text of any length.

        Example:
            >>> # p.predict("Wagner Group fighters shelled Bakhmut.").entities[0].label
        """
        return self._predict_chunk([as_text(text)], 8)[0]

    def predict_batch(self, texts: Sequence[str], batch_size: int = 8, *, chunk_size: int = CHUNK_SIZE,
                      progress: bool | None = None) -> list[Prediction]:
        """Predict many texts, in order; windows of a chunk of texts are pooled, sorted by length and
        batched. Memory is bounded by ``chunk_size`` texts (and the results).

        8 windows a batch was the fastest on a 2-core CPU (16, 32 and 64 were 4-35% slower);
        on a GPU, larger batches pay off.

        Example:
            >>> # [len(p.entities) for p in predictor.predict_batch(["Kyiv was hit.", "Calm in Lviv."])]
        """
        if isinstance(texts, (str, bytes, bytearray)):
            raise InputError("predict_batch takes a list of texts; use predict() for one text")
        if isinstance(texts, Mapping):
            raise InputError("predict_batch takes a list of texts, not a mapping; pass list(d.values())")
        return list(self.stream(texts, batch_size=batch_size, chunk_size=chunk_size, progress=progress))

    def stream(self, texts: Iterable[str], *, batch_size: int = 8, chunk_size: int = CHUNK_SIZE,
               progress: bool | None = None) -> Iterator[Prediction]:
        """Yield one prediction per text, in order, for any number of texts (a generator, a file).

        Example:
            >>> # for pred in predictor.stream(line.strip() for line in open("articles.txt")): ...
        """
        for name, value in (("batch_size", batch_size), ("chunk_size", chunk_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number >= 1, got {value!r}")
        if isinstance(texts, (str, bytes, bytearray, Mapping)):
            raise InputError("stream takes an iterable of texts (a list, a generator), not one text or a mapping")
        total = len(texts) if hasattr(texts, "__len__") else None
        progress = self.progress if progress is None else progress
        bar = None
        if _show_progress(progress, total):
            from tqdm.auto import tqdm

            bar = tqdm(total=total, unit="text", desc="predict")
        try:
            it = iter(texts)
            while chunk := list(itertools.islice(it, chunk_size)):
                yield from self._predict_chunk([as_text(t) for t in chunk], batch_size)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()

    def _predict_chunk(self, texts: list[str], batch_size: int) -> list[Prediction]:
        preds = []
        for text, out in zip(texts, self.ner(texts, batch_size=batch_size)):
            entities = tuple(
                Entity(s.label, s.start, s.end, text[s.start : s.end], float(score), id=f"e{i + 1}")
                for i, (s, score) in enumerate(out.spans)
            )
            preds.append(Prediction(text, entities))
        if self.relation_model is not None:
            preds = self.relation_model.add_to(preds, batch_size=batch_size)
        return preds

    def window_batches(self, texts: Sequence[str], batch_size: int = 8):
        """The texts tokenized and cut into the model's windows, and the windows in batches.

        Returns ``(tokenized texts, window bounds per text, batches)``; each batch is
        ``(jobs, ids, mask)`` with a job ``(text index, window index, text tokens)`` per row.

        Example:
            >>> # tdocs, bounds, batches = predictor.window_batches(["Kyiv was hit."])
        """
        content = self.max_length - len(self._prefix) - len(self._suffix)
        tdocs, all_bounds, jobs = [], [], []
        for d, text in enumerate(texts):
            tdoc = tokenize_document(text, self.tokenizer)
            bounds = window_bounds(tdoc, content, self.stride) if tdoc.ids else []
            tdocs.append(tdoc)
            all_bounds.append(bounds)
            jobs += [(d, k, we - ws) for k, (ws, we) in enumerate(bounds)]
        # Longest first: padding per batch stays small, and memory peaks early if at all.
        jobs.sort(key=lambda j: -j[2])

        def batches():
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
                yield batch, ids, mask

        return tdocs, all_bounds, batches()

    @torch.inference_mode()
    def ner(self, texts: Sequence[str], batch_size: int = 8) -> list[NerOutput]:
        """Entity decoding with everything the evaluation needs (raw word tags, scores)."""
        tdocs, all_bounds, batches = self.window_batches(texts, batch_size)
        probs: list[list[np.ndarray | None]] = [[None] * len(b) for b in all_bounds]
        for batch, ids, mask in batches:
            logits = self._forward(ids.to(self.device), mask.to(self.device))
            p = softmax(logits)
            for r, (d, k, n) in enumerate(batch):
                probs[d][k] = p[r, len(self._prefix) : len(self._prefix) + n]
        outputs = []
        for text, tdoc, bounds, doc_probs in zip(texts, tdocs, all_bounds, probs):
            if not tdoc.words:
                outputs.append(NerOutput(tdoc, [], np.zeros(0), [], np.zeros((0, len(self.id2label)), np.float32)))
                continue
            tags, scores, word_probs = decode_words(tdoc, bounds, doc_probs, self.id2label, decoding=self.decoding,
                                                    word_probs=self.word_probs, return_probs=True)
            spans = [(sp, score) for sp, score in spans_from_word_tags(tags, tdoc.words, scores, prefix="e", text=text)
                     if score >= self.threshold and _has_word_character(text[sp.start:sp.end])]
            outputs.append(NerOutput(tdoc, tags, scores, spans, word_probs))
        return outputs
