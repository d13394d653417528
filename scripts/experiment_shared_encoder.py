#!/usr/bin/env python
"""Can relations be read from the entity pass? A pair classifier over the entity encoder's states.

Issue 13 asks for full prediction at >= 50% of entities-only throughput. The shipped relation
model is a second encoder over every window (with levitated markers), which caps full prediction
near a third of entities-only (README, Speed). A classifier over the states the entity pass
already computes costs almost nothing more. This script measures what such a classifier loses in
quality before any of it goes into the package:

- the run's entity model is frozen; its encoder reads each document in the Predictor's windows
  (the run's ``max_length`` and ``stride``), each sub-token keeping its state from the window where
  it is most central (as entity decoding does);
- a span is the mean and the first of its sub-tokens' states and an embedding of its label; a
  candidate pair (the same candidates as the shipped relation model: ``RelationEncoder.candidates``
  with the run's settings) is head, tail, their product, the max over the states between them and
  a bucket of their distance; a two-layer MLP scores every relation label the schema allows for
  the pair (masked binary cross-entropy, as the shipped model trains); the schema's per-region
  attribute (``casualty_type``) is a two-layer MLP over the span and the ``CONTEXT`` sub-tokens on
  either side of it;
- the states are the mean of ``--layers`` (4 5 6 by default, chosen on validation over 6 alone);
- trained on the run's train split with gold entities; the epoch is chosen on validation relation
  F1 (gold entities, threshold 0.5); scored on the test split (and on the re3d validation
  documents in the conflict schema when ``../shared/data/re3d`` is here, never trained on) with
  gold entities and end to end (the run's own predicted entities), beside the run's shipped
  relation model on the same entities, in the same run.

    python scripts/experiment_shared_encoder.py --model runs/demo --seeds 1 2 3 \\
        --out docs/results/shared-encoder-demo.json

The page that reads its results is ``docs/shared-encoder-relations.md``.

It prints one table; ``--out`` keeps every number. Nothing here changes the package.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
RE3D_TEXT = ROOT.parent / "shared" / "data" / "re3d"
DIST_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64)
CONTEXT = 3  # sub-tokens either side of a span that its attribute reads


def token_states(predictor, texts, layers: tuple[int, ...]):
    """Per text: sub-token character offsets ``(n, 2)`` and each sub-token's state (mean of
    ``layers`` of the entity encoder) from the window where it is most central, the window that
    entity decoding reads it from (``alignment.pick_central``)."""
    import numpy as np
    import torch

    from conflict_ie.alignment import pick_central, tokenize_document, window_bounds

    model = predictor.model
    content = predictor.max_length - len(predictor._prefix) - len(predictor._suffix)
    out = []
    with torch.inference_mode():
        for text in texts:
            tdoc = tokenize_document(text, predictor.tokenizer)
            n = len(tdoc.ids)
            states = np.zeros((n, model.config.hidden_size), np.float32)
            bounds = window_bounds(tdoc, content, predictor.stride) if n else []
            owner = pick_central(bounds, n)
            for k, (ws, we) in enumerate(bounds):
                ids = torch.tensor([predictor._prefix + tdoc.ids[ws:we] + predictor._suffix])
                hs = model.base_model(input_ids=ids, attention_mask=torch.ones_like(ids),
                                      output_hidden_states=True).hidden_states
                h = torch.stack([hs[i] for i in layers]).mean(0)[0, len(predictor._prefix):][: we - ws].numpy()
                mine = np.nonzero(owner[ws:we] == k)[0]
                states[ws + mine] = h[mine]
            out.append((np.array(tdoc.offsets, dtype=np.int64).reshape(-1, 2), states))
    return out


def span_tokens(offsets, start: int, end: int) -> tuple[int, int]:
    """First sub-token of a character span and one past its last (overlap)."""
    import numpy as np

    idx = np.nonzero((offsets[:, 0] < end) & (offsets[:, 1] > start))[0]
    if not len(idx):
        raise ValueError(f"no sub-token in characters {start}-{end}")
    return int(idx[0]), int(idx[-1]) + 1


def pair_rows(docs_spans, preps, states, enc, schema, gold=None):
    """Every candidate pair: ``(doc, head span, tail span, head sub-tokens, tail sub-tokens, labels
    multi-hot, mask of the labels the schema allows)``; ``preps`` are ``enc.prepare`` of the texts."""
    import numpy as np

    labels = schema.relation_labels
    rows = []
    for n, ((text, spans), prep) in enumerate(zip(docs_spans, preps, strict=True)):
        offsets, _ = states[n]
        tok = {s.id: span_tokens(offsets, s.start, s.end) for s in spans}
        g = gold[n] if gold is not None else {}
        for h, t in enc.candidates(prep, spans):
            y = np.array([float(lab in g.get((h.id, t.id), ())) for lab in labels], np.float32)
            m = np.array([float(schema.allows(lab, h.label, t.label)) for lab in labels], np.float32)
            rows.append((n, h, t, tok[h.id], tok[t.id], y, m))
    return rows


def build_tensors(rows, states, label_index):
    """The MLP's inputs for ``rows``: span states, labels, context and distance, as tensors."""
    import numpy as np
    import torch

    def span_vec(st, a, b):
        return np.concatenate([st[a:b].mean(0), st[a]])

    hs, ts, ctx, dist, hl, tl, ys, ms = [], [], [], [], [], [], [], []
    for n, h, t, (ha, hb), (ta, tb), y, m in rows:
        st = states[n][1]
        hs.append(span_vec(st, ha, hb))
        ts.append(span_vec(st, ta, tb))
        lo, hi = (hb, ta) if hb <= ta else (tb, ha)
        ctx.append(st[lo:hi].max(0) if hi > lo else np.zeros(st.shape[1], np.float32))
        gap = max(0, hi - lo)
        dist.append(sum(gap >= b for b in DIST_BUCKETS) - 1 + (len(DIST_BUCKETS) if ha > ta else 0))
        hl.append(label_index[h.label])
        tl.append(label_index[t.label])
        ys.append(y)
        ms.append(m)
    f = lambda x, dt=torch.float32: torch.tensor(np.array(x), dtype=dt)  # noqa: E731
    return {"head": f(hs), "tail": f(ts), "ctx": f(ctx), "dist": f(dist, torch.long), "hl": f(hl, torch.long),
            "tl": f(tl, torch.long), "y": f(ys), "m": f(ms)}


def attribute_rows(docs, states, attribute):
    """Span vectors and choice indices of the gold spans that carry ``attribute``."""
    import numpy as np
    import torch

    xs, ys, where = [], [], []
    for n, doc in enumerate(docs):
        offsets, st = states[n]
        for sp in doc.spans:
            value = sp.attributes.get(attribute.name)
            if value is None:
                continue
            a, b = span_tokens(offsets, sp.start, sp.end)
            # The type is often said next to the figure ("12 were killed"), so the sub-tokens on either
            # side count too, each in its place (a mean over them blurred "killed" into its neighbours).
            near = [st[k] if 0 <= k < len(st) else np.zeros(st.shape[1], np.float32)
                    for k in [*range(a - CONTEXT, a), *range(b, b + CONTEXT)]]
            xs.append(np.concatenate([st[a:b].mean(0), st[a], *near]))
            ys.append(attribute.choices.index(value))
            where.append((n, sp.id))
    return torch.tensor(np.array(xs), dtype=torch.float32), torch.tensor(ys), where


def make_mlp(dim: int, n_entity_labels: int, n_labels: int, hidden: int, dropout: float):
    import torch
    from torch import nn

    class PairMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.label = nn.Embedding(n_entity_labels, 32)
            self.dist = nn.Embedding(2 * len(DIST_BUCKETS), 32)
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(6 * dim + 3 * 32, hidden),
                                     nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_labels))

        def forward(self, b):
            h, t = b["head"], b["tail"]
            hm, tm = h[:, : h.shape[1] // 2], t[:, : t.shape[1] // 2]
            x = torch.cat([h, t, hm * tm, b["ctx"], self.label(b["hl"]), self.label(b["tl"]),
                           self.dist(b["dist"])], -1)
            return self.net(x)

    return PairMLP()


def keys_of(rows, probs, schema, threshold, doc_ids):
    """Relation keys (as the evaluation counts them) of the rows scored at or above ``threshold``."""
    from conflict_ie.evaluation import relation_key

    symmetric = {r.label for r in schema.relations if r.symmetric}
    out = set()
    for (n, h, t, *_), p in zip(rows, probs):
        for k, lab in enumerate(schema.relation_labels):
            if p[k] >= threshold and schema.allows(lab, h.label, t.label):
                out.add(relation_key(doc_ids[n], h, t, lab, symmetric))
    return out


def f1(gold_keys, pred_keys, schema) -> float:
    from conflict_ie.evaluation import relation_scores

    return relation_scores(gold_keys, pred_keys, schema.relation_labels)["micro"]["f1"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "runs" / "demo"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--layers", type=int, nargs="+", default=[4, 5, 6],
                    help="encoder layers averaged (6: the last; 4 5 6 chosen on validation)")
    ap.add_argument("--epochs", type=int, default=30, help="MLP epochs; the best on validation is kept")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", help="a JSON file for every number")
    ap.add_argument("--no-re3d", action="store_true", help="leave out the re3d validation documents")
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    import numpy as np
    import torch

    from conflict_ie.corpus import documents_of, load_corpus
    from conflict_ie.documents import Span
    from conflict_ie.evaluation import gold_relation_keys, relation_key
    from conflict_ie.predictor import Predictor
    from conflict_ie.relation_data import gold_label_sets
    from conflict_ie.relation_inference import RelationExtractor

    torch.set_num_threads(2)
    corpus, schema = load_corpus(Path(args.model) / "corpus")
    sets = {k: documents_of(corpus[k], schema) for k in ("train", "validation", "test")}
    if schema.name != "conflict" or args.no_re3d:
        pass  # a run in another schema (re3d's own): its validation split is the re3d set
    elif RE3D_TEXT.is_dir():
        sys.path.insert(0, str(ROOT / "scripts"))
        from effect_re3d import split_inputs

        sets["re3d validation"] = split_inputs()[1]["validation"]
    else:
        print(f"{RE3D_TEXT} is absent: no re3d numbers", file=sys.stderr)
    ner = Predictor.from_pretrained(args.model, relations=False)
    shipped = RelationExtractor.from_pretrained(Path(args.model) / "relations", schema=schema)
    enc = shipped.encoder
    symmetric = {r.label for r in schema.relations if r.symmetric}
    label_index = {lab: i for i, lab in enumerate(schema.entity_labels)}

    t0 = time.perf_counter()
    data = {}
    for name, docs in sets.items():
        texts = [d.text for d in docs]
        st = token_states(ner, texts, tuple(args.layers))
        preps = [enc.prepare(t) for t in texts]  # sentences and sub-tokens, once per text
        gold_spans = [(d.text, list(d.spans)) for d in docs]
        data[name] = {"docs": docs, "states": st, "gold_spans": gold_spans,
                      "gold_keys": set().union(*(gold_relation_keys(d, symmetric) for d in docs)),
                      "gold_rows": pair_rows(gold_spans, preps, st, enc, schema,
                                             [gold_label_sets(d, schema) for d in docs])}
        if name != "train":
            preds = ner.predict_batch(texts, progress=False)
            data[name]["pred_spans"] = [(p.text, [Span(e.id, e.start, e.end, e.label) for e in p.entities])
                                        for p in preds]
            data[name]["pred_rows"] = pair_rows(data[name]["pred_spans"], preps, st, enc, schema)
    print(f"states and candidates: {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    def shipped_keys(name, found):
        ids = [d.id for d in data[name]["docs"]]
        return {relation_key(ids[n], h, t, lab, symmetric)
                for n, (rels, _) in enumerate(found) for h, t, lab, _ in rels}

    attribute = enc.attributes[0] if enc.attributes else None
    attrs = {name: attribute_rows(data[name]["docs"], data[name]["states"], attribute) for name in data} \
        if attribute else {}
    results = {"settings": vars(args), "shipped": {}, "pair_mlp": [],
               "gold_relations": {name: len(data[name]["gold_keys"]) for name in data},
               "attribute_spans": {name: len(a[1]) for name, a in attrs.items()}}
    t0 = time.perf_counter()
    for name in data:
        if name == "train":
            continue
        on_gold = shipped.classify_many(data[name]["gold_spans"])
        on_pred = shipped.classify_many(data[name]["pred_spans"])
        results["shipped"][name] = {"gold": f1(data[name]["gold_keys"], shipped_keys(name, on_gold), schema),
                                    "end_to_end": f1(data[name]["gold_keys"], shipped_keys(name, on_pred), schema)}
        if attribute:
            got = [{sid: dict((a, v) for a, v, _ in vals).get(attribute.name) for sid, vals in f[1].items()}
                   for f in on_gold]
            _, ys, where = attrs[name]
            right = [got[n].get(sid) == attribute.choices[int(y)] for (n, sid), y in zip(where, ys)]
            results["shipped"][name][attribute.name] = sum(right) / max(len(right), 1)
    shipped_s = time.perf_counter() - t0

    tensors = {name: {w: build_tensors(data[name][f"{w}_rows"], data[name]["states"], label_index)
                      for w in ("gold", "pred") if f"{w}_rows" in data[name]} for name in data}
    dim = ner.model.config.hidden_size
    for seed in args.seeds:
        torch.manual_seed(seed)
        np.random.seed(seed)
        mlp = make_mlp(dim, len(schema.entity_labels), len(schema.relation_labels), args.hidden, args.dropout)
        opt = torch.optim.AdamW(mlp.parameters(), lr=args.lr, weight_decay=0.01)
        train = tensors["train"]["gold"]
        n = len(train["y"])
        best = (-1.0, None, -1)
        t1 = time.perf_counter()
        for epoch in range(args.epochs):
            mlp.train()
            perm = torch.randperm(n)
            for i in range(0, n, 64):
                idx = perm[i : i + 64]
                b = {k: v[idx] for k, v in train.items()}
                logits = mlp(b)
                each = torch.nn.functional.binary_cross_entropy_with_logits(logits, b["y"], reduction="none")
                loss = (each * b["m"]).sum() / b["m"].sum().clamp(min=1.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
            mlp.eval()
            with torch.no_grad():
                p = torch.sigmoid(mlp(tensors["validation"]["gold"])).numpy()
            v = f1(data["validation"]["gold_keys"],
                   keys_of(data["validation"]["gold_rows"], p, schema, 0.5, [d.id for d in data["validation"]["docs"]]),
                   schema)
            if v > best[0]:
                best = (v, {k: x.clone() for k, x in mlp.state_dict().items()}, epoch + 1)
        train_s = time.perf_counter() - t1
        mlp.load_state_dict(best[1])
        mlp.eval()
        row = {"seed": seed, "epoch": best[2], "train_seconds": train_s}
        t1 = time.perf_counter()
        for name in data:
            if name == "train":
                continue
            ids = [d.id for d in data[name]["docs"]]
            with torch.no_grad():
                pg = torch.sigmoid(mlp(tensors[name]["gold"])).numpy()
                pp = torch.sigmoid(mlp(tensors[name]["pred"])).numpy()
            row[name] = {"gold": f1(data[name]["gold_keys"], keys_of(data[name]["gold_rows"], pg, schema, 0.5, ids),
                                    schema),
                         "end_to_end": f1(data[name]["gold_keys"],
                                          keys_of(data[name]["pred_rows"], pp, schema, 0.5, ids), schema)}
        row["score_seconds"] = time.perf_counter() - t1
        if attribute:
            # The attribute head: a two-layer MLP over the span and its neighbours, on the train split.
            torch.manual_seed(seed)
            head = torch.nn.Sequential(torch.nn.Dropout(args.dropout), torch.nn.Linear((2 + 2 * CONTEXT) * dim, 256),
                                       torch.nn.GELU(), torch.nn.Dropout(args.dropout),
                                       torch.nn.Linear(256, len(attribute.choices)))
            aopt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.01)
            x, y, _ = attrs["train"]
            for _ in range(10 * args.epochs):  # full-batch steps: a few hundred spans
                head.train()
                loss = torch.nn.functional.cross_entropy(head(x), y)
                aopt.zero_grad()
                loss.backward()
                aopt.step()
            head.eval()
            with torch.no_grad():
                for name in data:
                    if name != "train":
                        xa, ya, _ = attrs[name]
                        right = (head(xa).argmax(-1) == ya).float()
                        row[name][attribute.name] = float(right.mean()) if len(ya) else 0.0
        results["pair_mlp"].append(row)
        print(json.dumps(row), file=sys.stderr)

    def stat(xs):
        return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"

    print(f"model {args.model}; layers {args.layers}; pair MLP seeds {args.seeds}; "
          f"shipped relation model scored in {shipped_s:.0f} s, the MLP in about "
          f"{statistics.mean(r['score_seconds'] for r in results['pair_mlp']):.2f} s (states not counted)")
    print("| set | entities | shipped (one pass, second encoder) | pair MLP on entity states |")
    print("|---|---|---|---|")
    for name in results["shipped"]:
        for w in ("gold", "end_to_end") + ((attribute.name,) if attribute else ()):
            what = w.replace("_", " ") if w != getattr(attribute, "name", None) else f"{w} accuracy (gold spans)"
            print(f"| {name} ({results['gold_relations'][name]} gold relations) | {what} | "
                  f"{results['shipped'][name][w]:.3f} | {stat([r[name][w] for r in results['pair_mlp']])} |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
