#!/usr/bin/env python
"""Relations whose markers read the entity pass: an experiment for issue 13's 50% goal.

The shipped relation model reads every window of text a second time with its own encoder,
with each candidate pair's four levitated markers after the text. The text never sees a
marker, so the text half of that pass is a plain encoder pass over the text: the markers
only read the text's keys and values at every layer. Here the text half is the *entity*
encoder's pass, which the Predictor runs anyway: the entity model is frozen, and a
trainable copy of its layers, the *marker stream*, carries only the marker tokens. At each
layer a marker attends to the text's states from the entity pass (through the stream's own
key and value projections) and to its own pair's markers, exactly as in the shipped design
(``relation_data``). What the stream costs is the markers' tokens plus two projections of
the text per layer, not a second pass over the text.

Text states come from the entity pass as the Predictor runs it: its windows and stride,
every sub-token's states from the window where it is most central (``alignment.pick_central``),
for training and scoring alike. A relation window's ``[CLS]`` and ``[SEP]`` take the states
of those of its first and last token's entity windows, and a marker takes the position id
that its span's token had there. The heads, candidates, windows, packing and loss are the
shipped model's; training uses ``transformers.Trainer`` with the run's relation settings.
It is BERT-family only (the layer's ``attention.self.query/key/value``), which the stream
reads by name; this is an experiment, not a package design.

    python scripts/experiment_marker_stream.py --run runs/demo --seeds 1 2 3 \\
        --split validation test --out docs/results/relations-demo-marker-stream.json
    python scripts/experiment_marker_stream.py --run runs/demo --speed   # timing on the benchmark texts

The results file has ``scripts/compare_relations.py``'s layout, so ``scripts/relations_page.py``
compares it with that script's files.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]

from conflict_ie.relation_data import RelationEncoder, Window  # noqa: E402
from conflict_ie.relation_inference import RelationExtractor, split_by_row  # noqa: E402
from conflict_ie.relation_model import between_mean  # noqa: E402

CLS, SEP = -1, -2  # doc-token codes of a relation window's special tokens


@dataclass(frozen=True)
class DocStates:
    """One text's entity pass: every sub-token's hidden states at every layer's input and the
    encoder's output (``layers``: ``(L + 1, n, hidden)``), its character start, the position id
    it had in its window and that window, and every window's ``[CLS]`` / ``[SEP]`` states."""

    starts: dict[int, int]  # character start -> sub-token index
    layers: np.ndarray
    position: np.ndarray
    owner: np.ndarray  # (n,): the window each sub-token was read from
    cls: np.ndarray  # (L + 1, windows, hidden): each window's [CLS] states
    sep: np.ndarray


def entity_pass(predictor, texts, batch_size: int = 8) -> dict[str, DocStates]:
    """The entity encoder's states for ``texts`` in the Predictor's windows, batched as
    ``Predictor.ner`` batches them (longest first), with ``output_hidden_states``.

    Example:
        >>> # states = entity_pass(Predictor.from_pretrained("runs/demo", relations=False), ["Kyiv was hit."])
    """
    from conflict_ie.alignment import pick_central

    p = predictor
    tdocs, all_bounds, batches = p.window_batches(texts, batch_size)
    got: dict[tuple[int, int], tuple[np.ndarray, int]] = {}
    with torch.inference_mode():
        for batch, ids, mask in batches:
            hs = p.model.base_model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
            hs = torch.stack(hs, 1).numpy()  # (B, L + 1, width, hidden)
            for r, (d, k, n) in enumerate(batch):
                got[d, k] = (hs[r, :, : n + len(p._prefix) + len(p._suffix)], n)
    out = {}
    pre = len(p._prefix)
    first = next(iter(got.values()))[0] if got else np.zeros((1, 1, 1))
    L1, hidden = first.shape[0], first.shape[-1]
    for d, text in enumerate(texts):
        tdoc, bounds = tdocs[d], all_bounds[d]
        owner = pick_central(bounds, len(tdoc.ids))
        n = len(tdoc.ids)
        layers = np.zeros((L1, n, hidden), np.float32)
        cls, sep = np.zeros((L1, len(bounds), hidden), np.float32), np.zeros((L1, len(bounds), hidden), np.float32)
        position = np.zeros(n, np.int64)
        for k, (ws, we) in enumerate(bounds):
            h, m = got[d, k]
            mine = np.nonzero(owner[ws:we] == k)[0]
            layers[:, ws + mine] = h[:, pre + mine]
            position[ws + mine] = pre + mine
            cls[:, k] = h[:, 0]
            sep[:, k] = h[:, pre + m]
        starts = {int(s): t for t, (s, e) in enumerate(tdoc.offsets) if e > s}
        out[text] = DocStates(starts, layers, position, np.asarray(owner, np.int64), cls, sep)
    return out


@dataclass(frozen=True)
class StreamWindow(Window):
    """A relation window that also knows, per token, its character start in the text (``CLS`` /
    ``SEP`` for the special tokens) and which text it belongs to."""

    doc_tokens: tuple[int, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class StreamEncoder(RelationEncoder):
    """The shipped windows, jobs and packing, with every row carrying its window's doc tokens."""

    def encode_window(self, prep, ctx, spans):
        w = super().encode_window(prep, ctx, spans)
        if w is None:
            return None
        # Character starts, which the collator maps to the entity pass's sub-tokens: the text's own
        # sub-tokens inside the window (the window was tokenized from the same text), not a second
        # tokenization of it.
        starts = prep.token_starts
        inside = starts[(starts >= ctx[0]) & (starts < ctx[1])].tolist()
        if len(inside) != len(w.input_ids) - 2:
            raise ValueError(f"window {ctx} has {len(w.input_ids) - 2} sub-tokens but the text {len(inside)} there")
        doc = [CLS] + inside + [SEP]
        return StreamWindow(w.start, w.end, w.input_ids, w.positions, tuple(doc), prep.text)

    def pack(self, window, jobs, stats=None):
        rows = super().pack(window, jobs, stats)
        for r in rows:
            r["doc_tokens"], r["text"] = window.doc_tokens, window.text
        return rows


class StreamCollator:
    """Batches rows into the text's entity-pass states and the marker tokens, apart."""

    def __init__(self, store: dict[str, DocStates], pad_id: int, n_labels: int = 0):
        self.store, self.pad_id, self.n_labels = store, pad_id, n_labels

    def __call__(self, rows):
        T = max(len(r["doc_tokens"]) for r in rows)
        M = max(max(len(r["input_ids"]) - len(r["doc_tokens"]) for r in rows), 1)
        first = self.store[rows[0]["text"]]
        L1, hidden = first.layers.shape[0], first.layers.shape[2]
        text = np.zeros((L1, len(rows), T, hidden), np.float32)
        text_mask = torch.zeros((len(rows), T), dtype=torch.bool)
        ids = torch.full((len(rows), M), self.pad_id, dtype=torch.long)
        pos = torch.zeros_like(ids)
        groups = torch.full_like(ids, -2)
        pair_index, between, attr_index, attr_label, rel_labels, rel_mask = [], [], [], [], [], []
        for i, r in enumerate(rows):
            st = self.store[r["text"]]
            # Character starts to the entity pass's sub-tokens (KeyError: the two tokenizers differ).
            toks = [st.starts[c] if c >= 0 else c for c in r["doc_tokens"]]
            real = [t for t in toks if t >= 0]
            cls_at = [j for j, t in enumerate(toks) if t == CLS]
            sep_at = [j for j, t in enumerate(toks) if t == SEP]
            at = [j for j, t in enumerate(toks) if t >= 0]
            text[:, i, at] = st.layers[:, real]
            text[:, i, cls_at] = st.cls[:, st.owner[real[0]]][:, None]
            text[:, i, sep_at] = st.sep[:, st.owner[real[-1]]][:, None]
            n = len(toks)
            text_mask[i, :n] = True
            m = len(r["input_ids"]) - n
            ids[i, :m] = torch.tensor(r["input_ids"][n:], dtype=torch.long)
            # A marker takes the position id its span's token had in the entity pass.
            pos[i, :m] = torch.tensor([int(st.position[toks[q]]) for q in r["position_ids"][n:]], dtype=torch.long)
            groups[i, :m] = torch.tensor(r["groups"][n:], dtype=torch.long)
            pair_index += [[i, h - n, t - n] for h, t in r["pairs"]]
            between += r["between"]
            rel_labels += r.get("rel_labels", ())
            rel_mask += r.get("rel_mask", ())
            for a in r["attrs"]:
                attr_index.append([i, a[0] - n, a[1]])
                if len(a) > 2:
                    attr_label.append(a[2])
        q, k = groups[:, :, None], groups[:, None, :]
        among = ((q >= 0) & (k == q)) | torch.eye(M, dtype=torch.bool)[None]
        mask = torch.cat([text_mask[:, None, :].expand(-1, M, -1), among], dim=2)[:, None]
        batch = {"text_states": torch.from_numpy(text), "marker_ids": ids, "marker_positions": pos,
                 "attention_mask": mask, "pair_index": torch.tensor(pair_index, dtype=torch.long).reshape(-1, 3),
                 "pair_between": torch.tensor(between, dtype=torch.long).reshape(-1, 2),
                 "attr_index": torch.tensor(attr_index, dtype=torch.long).reshape(-1, 3)}
        if any("rel_labels" in r for r in rows):
            n_labels = self.n_labels or (len(rel_labels[0]) if rel_labels else 0)
            batch["rel_labels"] = torch.tensor(rel_labels, dtype=torch.float).reshape(-1, n_labels)
            batch["rel_mask"] = torch.tensor(rel_mask, dtype=torch.float).reshape(-1, n_labels)
            batch["attr_label"] = torch.tensor(attr_label, dtype=torch.long)
        return batch


class MarkerStream(nn.Module):
    """A copy of a BERT-family encoder that carries marker tokens only: at every layer a marker
    reads the given text states through this layer's key and value projections, and the
    markers its mask lets it see (its own pair's), as the shipped model's markers do."""

    def __init__(self, encoder, relation_labels, attributes, pair_context: str = "mean", dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.config = encoder.config
        self.pair_context = pair_context
        self.dropout = nn.Dropout(dropout)
        reads = 3 if pair_context == "mean" else 2
        self.relation_head = nn.Linear(reads * hidden, max(len(relation_labels), 1))
        self.attribute_heads = nn.ModuleList(nn.Linear(hidden, len(a["choices"])) for a in attributes)
        for head in [self.relation_head, *self.attribute_heads]:
            head.weight.data.normal_(0.0, 0.02)
            head.bias.data.zero_()

    def markers(self, text_states, marker_ids, marker_positions, attention_mask):
        """Marker states after the last layer; ``text_states``: ``(L + 1, B, T, hidden)``,
        ``attention_mask``: boolean ``(B, 1, M, T + M)``."""
        x = self.encoder.embeddings(input_ids=marker_ids, position_ids=marker_positions,
                                    token_type_ids=torch.zeros_like(marker_ids))
        B, M, hidden = x.shape
        for layer, txt in zip(self.encoder.encoder.layer, text_states):
            sa = layer.attention.self
            H, d = sa.num_attention_heads, sa.attention_head_size

            def heads(t):
                return t.view(B, t.shape[1], H, d).transpose(1, 2)

            both = torch.cat([txt, x], dim=1)
            o = nn.functional.scaled_dot_product_attention(
                heads(sa.query(x)), heads(sa.key(both)), heads(sa.value(both)), attn_mask=attention_mask,
                dropout_p=sa.dropout.p if self.training else 0.0, scale=sa.scaling)
            a = layer.attention.output(o.transpose(1, 2).reshape(B, M, hidden), x)
            x = layer.output(layer.intermediate(a), a)
        return x

    def forward(self, text_states, marker_ids, marker_positions, attention_mask, pair_index, attr_index,
                pair_between=None, rel_labels=None, rel_mask=None, attr_label=None):
        m = self.markers(text_states, marker_ids, marker_positions, attention_mask)
        h = self.dropout(m[pair_index[:, 0], pair_index[:, 1]])
        t = self.dropout(m[pair_index[:, 0], pair_index[:, 2]])
        reads = [h, t]
        if self.pair_context == "mean":
            reads.append(self.dropout(between_mean(text_states[-1], pair_index[:, 0], pair_between)))
        a = self.dropout(m[attr_index[:, 0], attr_index[:, 1]])
        out = {"relation_logits": self.relation_head(torch.cat(reads, -1)),
               "attribute_logits": [head(a) for head in self.attribute_heads]}
        if rel_labels is not None or attr_label is not None:
            losses = []
            if rel_labels is not None and len(rel_labels):
                each = nn.functional.binary_cross_entropy_with_logits(out["relation_logits"], rel_labels,
                                                                      reduction="none")
                losses.append((each * rel_mask).sum() / rel_mask.sum().clamp(min=1.0))
            for k, logits in enumerate(out["attribute_logits"]):
                mine = attr_index[:, 2] == k
                if attr_label is not None and mine.any():
                    losses.append(nn.functional.cross_entropy(logits[mine], attr_label[mine]))
            out["loss"] = torch.stack(losses).mean() if losses else m.sum() * 0.0
        return out


class StreamExtractor(RelationExtractor):
    """The shipped extractor's decoding, with the marker stream over the entity pass as its model."""

    def __init__(self, model: MarkerStream, tokenizer, schema, predictor, rc, store=None, max_pairs: int = 128):
        from conflict_ie.relation_inference import INFERENCE_MAX_PAIRS

        self.device = torch.device("cpu")
        self.model = model.eval()
        self.schema = schema
        self.threshold = float(rc.threshold)
        self.predictor = predictor
        self.store = {} if store is None else store
        self.encoder = StreamEncoder(tokenizer, schema, rc.max_length, rc.max_sentence_distance,
                                     rc.max_token_distance, attributes=schema.attributes,
                                     max_pairs=max_pairs or INFERENCE_MAX_PAIRS)
        self._stream_collate = StreamCollator(self.store, tokenizer.pad_token_id)
        self._symmetric = {r.label for r in schema.relations if r.symmetric}

    def classify_many(self, items, batch_size=16, stats=None):
        todo = list(dict.fromkeys(text for text, _ in items if text not in self.store))
        if todo:
            self.store.update(entity_pass(self.predictor, todo))
        return super().classify_many(items, batch_size, stats)

    @torch.inference_mode()
    def _run(self, windows, batch_size):
        out: list[Any] = [None] * len(windows)
        order = sorted(range(len(windows)), key=lambda i: -len(windows[i]["input_ids"]))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            rows = [windows[j] for j in idx]
            for j, probs in zip(idx, split_by_row(rows, self.model(**self._stream_collate(rows)))):
                out[j] = probs
        return out


def relation_tokenizer(config, schema):
    from transformers import AutoTokenizer

    from conflict_ie.relation_data import marker_tokens
    from conflict_ie.training import resolve_base_model

    tok = AutoTokenizer.from_pretrained(resolve_base_model(config.base_model))
    tok.add_special_tokens({"additional_special_tokens": marker_tokens(schema)})
    return tok


def train_stream(config, corpus, schema, predictor, store, out: Path):
    """The marker stream trained as ``training.train_relations`` trains the shipped model: the same
    rows, settings and ``Trainer``; the stream starts as a copy of the entity encoder."""
    from transformers import Trainer, TrainingArguments, set_seed

    from conflict_ie.corpus import documents_of
    from conflict_ie.relation_data import training_rows
    from conflict_ie.training import device_arguments

    rc = config.relations
    set_seed(config.seed)
    tok = relation_tokenizer(config, schema)
    enc = StreamEncoder(tok, schema, rc.max_length, rc.max_sentence_distance, rc.max_token_distance,
                        attributes=schema.attributes, max_pairs=rc.max_pairs)
    docs = documents_of(corpus["train"], schema)
    missing = [d.text for d in docs if d.text not in store]
    if missing:
        store.update(entity_pass(predictor, missing))
    rows, stats = training_rows(docs, enc, negative_ratio=rc.negative_ratio, seed=config.seed)
    encoder = copy.deepcopy(predictor.model.base_model)
    encoder.resize_token_embeddings(len(tok))
    attributes = [{"name": a.name, "choices": list(a.choices)} for a in schema.attributes]
    model = MarkerStream(encoder, schema.relation_labels, attributes, rc.pair_context)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"), learning_rate=rc.learning_rate, num_train_epochs=rc.epochs,
        max_steps=rc.max_steps, per_device_train_batch_size=rc.batch_size, warmup_steps=rc.warmup,
        weight_decay=rc.weight_decay, save_strategy="no", report_to=[], logging_steps=config.ner.logging_steps,
        seed=config.seed, data_seed=config.seed, remove_unused_columns=False, **device_arguments())
    trainer = Trainer(model=model, args=args, train_dataset=rows,
                      data_collator=StreamCollator(store, tok.pad_token_id, len(schema.relation_labels)))
    trainer.train()
    return model, tok, stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--config", help="the training config (default: the run's train_config.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--split", nargs="+", default=["test"])
    ap.add_argument("--out", help="JSON file for the results")
    ap.add_argument("--speed", action="store_true", help="time it on the benchmark texts (seed 1) instead")
    args = ap.parse_args(argv)

    from compare_relations import split_scores, summarise
    from conflict_ie.config import TrainConfig
    from conflict_ie.corpus import documents_of, load_corpus
    from conflict_ie.predictor import Predictor

    run = Path(args.run)
    config = TrainConfig.load(args.config or run / "train_config.yaml", args.set)
    corpus, schema = load_corpus(run / "corpus")
    ner = Predictor.from_pretrained(run, relations=False)
    store: dict[str, DocStates] = {}
    if args.speed:
        return speed(run, config, corpus, schema, ner, store)
    splits = {name: documents_of(corpus[name], schema) for name in args.split}
    spans = {name: [[s for s, _ in o.spans] for o in ner.ner([d.text for d in docs])] for name, docs in splits.items()}
    results = {"label": "marker stream over the entity pass", "run": str(run), "overrides": args.set, "seeds": {}}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = replace(config, seed=seed)
            started = time.perf_counter()
            model, tok, stats = train_stream(cfg, corpus, schema, ner, store, Path(tmp))
            seconds = time.perf_counter() - started
            rx = StreamExtractor(model, tok, schema, ner, cfg.relations, store)
            row = {"train_seconds": round(seconds, 1), "train_stats": stats}
            for name, docs in splits.items():
                row[name] = split_scores(rx, docs, spans[name])
            results["seeds"][seed] = row
            print(json.dumps({"seed": seed, **{k: v for k, v in row.items() if k != "train_stats"}}), flush=True)
            results["summary"] = summarise(results["seeds"], args.split)
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))
    return 0


def speed(run, config, corpus, schema, ner, store) -> int:
    """Entities only, the shipped full Predictor, and entities + the marker stream, on the
    benchmark's texts, fp32, torch, 2 threads, batch 8, best of 2 rounds. The entity pass with
    hidden states is timed on its own, beside the plain entity pass it would replace."""
    from bench_predict import BATCH, texts

    from conflict_ie.predictor import Predictor
    from conflict_ie.results import Entity, Prediction

    torch.set_num_threads(2)
    T = texts()
    n_tokens = sum(len(ner.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in T)
    cfg = replace(config, seed=1)
    model, tok, _ = train_stream(replace(cfg, relations=replace(cfg.relations, max_steps=2)), corpus, schema, ner,
                                 store, Path(tempfile.mkdtemp()))  # untrained weights time the same
    rx = StreamExtractor(model, tok, schema, ner, cfg.relations, store)
    shipped = Predictor.from_pretrained(run)

    def best(fn):
        times = []
        for _ in range(2):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    def preds():
        return [Prediction(text, tuple(Entity(s.label, s.start, s.end, text[s.start:s.end], float(sc), id=f"e{i + 1}")
                                       for i, (s, sc) in enumerate(out.spans)))
                for text, out in zip(T, ner.ner(T, batch_size=BATCH))]

    entities = best(lambda: ner.ner(T, batch_size=BATCH))
    states = best(lambda: entity_pass(ner, T, BATCH))
    found = preds()
    store.update(entity_pass(ner, T, BATCH))
    stream = best(lambda: rx.add_to(found, batch_size=BATCH))
    # Packing more pairs into a row costs marker-to-marker attention that the mask throws away;
    # fewer repeats the text's key and value projections. Both timed; the faster one is reported.
    rx32 = StreamExtractor(model, tok, schema, ner, cfg.relations, store, max_pairs=32)
    stream32 = best(lambda: rx32.add_to(found, batch_size=BATCH))
    full = best(lambda: shipped.predict_batch(T, batch_size=BATCH))
    print(f"marker stream: {stream:.2f} s packing 128 pairs a row, {stream32:.2f} s packing 32")
    stream = min(stream, stream32)
    print(f"{len(T)} texts, {n_tokens} article tokens, fp32, torch, 2 threads, batch {BATCH}, best of 2 rounds")
    rows = [("entities only (Predictor.ner)", entities), ("entity pass with hidden states (entity_pass)", states),
            ("marker stream, given the entity pass's states", stream), ("shipped full Predictor", full),
            ("entities + marker stream", entities + stream),
            ("entities + entity pass again + marker stream", entities + states + stream)]
    for name, s in rows:
        print(f"| {name:48s} | {s:6.2f} s | {n_tokens / s:7.0f} tokens/s | {entities / s:4.0%} of entities-only |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
