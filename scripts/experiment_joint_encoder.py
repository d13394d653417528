#!/usr/bin/env python
"""Entities and relations from one encoder trained for both: what does the shared pass cost in quality?

Issue 13 asks for full prediction at >= 50% of entities-only throughput, with relation F1 at
least today's. Every design that keeps a second relation encoder stays near 33-47%; a pair
classifier over the *frozen* entity states costs almost nothing but lost 5-12 points
(``docs/shared-encoder-relations.md``). This script measures the one option that page left:
the entity encoder trained *jointly* on the entity, relation and casualty-type losses, so that
one pass serves all three.

- The model starts from the run's trained entity model (encoder and tag classifier). Its
  relation head is the pair MLP of ``experiment_shared_encoder.py``: a span is the mean and the
  first of its sub-tokens' states and an embedding of its label; a pair is head, tail, the
  product of their means, the mean state between them and a bucket of their distance. The
  casualty-type head reads the span and ``CONTEXT`` sub-tokens on either side of it.
- A document is read in the Predictor's own windows (the run's ``max_length`` and ``stride``),
  and each sub-token keeps its state from the window where it is most central, as entity
  decoding does. Training does exactly the same, so the pair head sees at training what it sees
  at prediction; the gradient flows through those stitched states into every window.
- The loss is the tag cross-entropy of every window (the entity model's own) plus the masked
  relation loss of the shipped relation model plus the casualty-type cross-entropy. The relation
  loss reads every positive candidate pair and as many negatives per positive as the run's
  ``relations.negative_ratio`` says (``--negative-ratio``), drawn once a seed, as the shipped
  relation training draws them. One document a step, AdamW, linear warm-up and decay; the encoder
  at ``--lr``, the new heads at ``--head-lr``.
- Nothing is selected on validation: the model after the last epoch is scored. The validation
  curve is recorded only to show whether more epochs would help.
- Scored on the validation and test splits (and on the re3d validation documents in the conflict
  schema when ``../shared/data/re3d`` is here and the run is in that schema): entity strict F1
  of the joint model's own decoding (the run's decoding settings), relations on gold entities
  and end to end (on its own entities), casualty-type accuracy on gold figures; beside the run's
  entity model and shipped relation model scored in the same run by the package's own report.

    python scripts/experiment_joint_encoder.py --model runs/demo --seeds 1 2 3 --probe-epochs 30 \\
        --layers 4 5 6 --out docs/results/joint-encoder-demo.json

The page that reads its results is ``docs/joint-encoder-relations.md``. Nothing here changes
the package.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
RE3D_TEXT = ROOT.parent / "shared" / "data" / "re3d"
sys.path.insert(0, str(ROOT / "scripts"))

from experiment_shared_encoder import CONTEXT, DIST_BUCKETS, f1, keys_of, span_tokens  # noqa: E402


def document_windows(doc, tokenizer, predictor, schema=None, label_all_tokens: bool = False):
    """The Predictor's windows of one document, as tensors: ``ids``/``mask`` ``(W, L)``, ``labels``
    (the entity model's training labels, with ``schema``), and for every sub-token ``t`` the window
    and position its state is read from (``window_of``, ``position_of``: the most central window).

    Example:
        >>> # w = document_windows(doc, tok, predictor, schema); w["window_of"].shape  -> (sub-tokens,)
    """
    import numpy as np
    import torch

    from conflict_ie.alignment import make_windows, pick_central, tokenize_document

    tdoc = tokenize_document(doc.text, tokenizer)
    rows = make_windows(doc, tokenizer, max_length=predictor.max_length, stride=predictor.stride,
                        label2id=schema.label2id if schema is not None else None,
                        label_all_tokens=label_all_tokens, tdoc=tdoc)
    width = max(len(r["input_ids"]) for r in rows)
    pad = tokenizer.pad_token_id or 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for k, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[k, :n] = torch.tensor(r["input_ids"])
        mask[k, :n] = 1
        if "labels" in r:
            labels[k, :n] = torch.tensor(r["labels"])
    n = len(tdoc.ids)
    bounds = [(r["token_start"], r["token_end"]) for r in rows]
    owner = pick_central(bounds, n) if n else []
    prefix = len(predictor._prefix)
    window_of = torch.tensor([int(owner[t]) for t in range(n)], dtype=torch.long)
    position_of = torch.tensor([prefix + t - bounds[int(owner[t])][0] for t in range(n)], dtype=torch.long)
    return {"ids": ids, "mask": mask, "labels": labels, "window_of": window_of, "position_of": position_of,
            "offsets": np.array(tdoc.offsets, dtype=np.int64).reshape(-1, 2)}


def pair_table(text, spans, offsets, enc, schema, label_index, gold=None):
    """Every candidate pair of one document (the shipped relation model's candidates) as index
    tensors for the pair head, with multi-hot labels and the mask of labels the schema allows;
    ``rows`` keeps the spans, for the relation keys."""
    import torch

    labels = schema.relation_labels
    tok = {s.id: span_tokens(offsets, s.start, s.end) for s in spans}
    rows, cols = [], {k: [] for k in ("ha", "hb", "ta", "tb", "hl", "tl", "dist", "lo", "hi", "y", "m")}
    g = gold or {}
    for h, t in enc.candidates(enc.prepare(text), spans):
        (ha, hb), (ta, tb) = tok[h.id], tok[t.id]
        lo, hi = (hb, ta) if hb <= ta else (tb, ha)
        hi = max(lo, hi)
        gap = hi - lo
        for k, v in (("ha", ha), ("hb", hb), ("ta", ta), ("tb", tb), ("hl", label_index[h.label]),
                     ("tl", label_index[t.label]), ("lo", lo), ("hi", hi),
                     ("dist", sum(gap >= b for b in DIST_BUCKETS) - 1 + (len(DIST_BUCKETS) if ha > ta else 0))):
            cols[k].append(v)
        cols["y"].append([float(lab in g.get((h.id, t.id), ())) for lab in labels])
        cols["m"].append([float(schema.allows(lab, h.label, t.label)) for lab in labels])
        rows.append((0, h, t))
    out = {k: torch.tensor(v, dtype=torch.float if k in ("y", "m") else torch.long) for k, v in cols.items()}
    out["y"] = out["y"].reshape(-1, len(labels))
    out["m"] = out["m"].reshape(-1, len(labels))
    out["rows"] = rows
    return out


def sample_negatives(pairs, ratio: float, rng):
    """The pair table with every positive pair and ``ratio`` negatives per positive drawn by ``rng``
    (a negative ratio keeps them all), as the shipped ``training_rows`` samples a document's pairs."""
    import torch

    positive = (pairs["y"].sum(1) > 0).nonzero().flatten().tolist()
    negative = (pairs["y"].sum(1) == 0).nonzero().flatten().tolist()
    keep = len(negative) if ratio < 0 else min(len(negative), int(round(ratio * max(len(positive), 1))))
    chosen = sorted(positive + rng.sample(negative, keep))
    index = torch.tensor(chosen, dtype=torch.long)
    out = {k: v[index] for k, v in pairs.items() if k != "rows"}
    out["rows"] = [pairs["rows"][i] for i in chosen]
    return out


def attribute_table(doc, offsets, attribute):
    """The gold spans carrying ``attribute``: token ranges and choice indices."""
    import torch

    a, b, y, ids = [], [], [], []
    if attribute is not None:
        for sp in doc.spans:
            value = sp.attributes.get(attribute.name)
            if value in attribute.choices:
                s, e = span_tokens(offsets, sp.start, sp.end)
                a.append(s)
                b.append(e)
                y.append(attribute.choices.index(value))
                ids.append(sp.id)
    return {"a": torch.tensor(a, dtype=torch.long), "b": torch.tensor(b, dtype=torch.long),
            "y": torch.tensor(y, dtype=torch.long), "ids": ids}


def make_joint_model(ner, n_entity_labels: int, n_relations: int, n_choices: int, hidden: int, dropout: float,
                     layers: tuple[int, ...] = ()):
    """The run's token classifier with a pair head and a casualty-type head over its stitched states
    (the mean of the encoder's ``layers``, 1-based; by default its last layer, which the tags read)."""
    import torch
    from torch import nn

    from conflict_ie.relation_model import between_mean

    dim = ner.config.hidden_size

    class JointModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.ner = ner
            self.label = nn.Embedding(n_entity_labels, 32)
            self.dist = nn.Embedding(2 * len(DIST_BUCKETS), 32)
            self.pair = nn.Sequential(nn.Dropout(dropout), nn.Linear(6 * dim + 3 * 32, hidden), nn.GELU(),
                                      nn.Dropout(dropout), nn.Linear(hidden, max(n_relations, 1)))
            self.attr = nn.Sequential(nn.Dropout(dropout), nn.Linear((2 + 2 * CONTEXT) * dim, 256), nn.GELU(),
                                      nn.Dropout(dropout), nn.Linear(256, max(n_choices, 1)))

        def read(self, w):
            """Tag logits of every window and each sub-token's state from its most central window."""
            out = self.ner.base_model(input_ids=w["ids"], attention_mask=w["mask"], output_hidden_states=bool(layers))
            logits = self.ner.classifier(self.ner.dropout(out.last_hidden_state))
            states = torch.stack([out.hidden_states[k] for k in layers]).mean(0) if layers else out.last_hidden_state
            return logits, states[w["window_of"], w["position_of"]]

        def pair_logits(self, doc_states, p):
            s = doc_states[None]  # one row: between_mean reads (rows, tokens, dim)
            zero = torch.zeros_like(p["ha"])

            def span(a, b):
                mean = between_mean(s, zero, torch.stack([a, b], 1))
                return mean, doc_states[a]

            hm, hf = span(p["ha"], p["hb"])
            tm, tf = span(p["ta"], p["tb"])
            ctx = between_mean(s, zero, torch.stack([p["lo"], p["hi"]], 1))
            x = torch.cat([hm, hf, tm, tf, hm * tm, ctx, self.label(p["hl"]), self.label(p["tl"]),
                           self.dist(p["dist"])], -1)
            return self.pair(x)

        def attr_logits(self, doc_states, at):
            s = doc_states[None]
            n = doc_states.shape[0]
            mean = between_mean(s, torch.zeros_like(at["a"]), torch.stack([at["a"], at["b"]], 1))
            near = []
            for k in [*[at["a"] - j for j in range(CONTEXT, 0, -1)], *[at["b"] + j for j in range(CONTEXT)]]:
                inside = ((k >= 0) & (k < n)).unsqueeze(-1).to(doc_states.dtype)
                near.append(doc_states[k.clamp(0, max(n - 1, 0))] * inside)
            return self.attr(torch.cat([mean, doc_states[at["a"]], *near], -1))

    return JointModel()


def joint_loss(model, item, states=None):
    """The entity, relation and casualty-type losses of one document, summed (each a mean). Given
    ``states`` (the probe stage: the encoder frozen, its states computed once), only the heads' losses."""
    import torch

    from conflict_ie.relation_model import relation_loss

    losses = []
    if states is None:
        logits, states = model.read(item["windows"])
        labels = item["windows"]["labels"]
        losses.append(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                        ignore_index=-100))
    if len(item["pairs"]["ha"]):
        losses.append(relation_loss(model.pair_logits(states, item["pairs"]), item["pairs"]["y"], item["pairs"]["m"]))
    if len(item["attrs"]["a"]):
        losses.append(torch.nn.functional.cross_entropy(model.attr_logits(states, item["attrs"]), item["attrs"]["y"]))
    return sum(losses) if losses else torch.zeros(())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "runs" / "demo"))
    ap.add_argument("--relations", help="the relation model beside it, whose candidates the pair head scores "
                    "(default: MODEL/relations)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--epochs", type=int, default=10, help="joint epochs: encoder and heads together")
    ap.add_argument("--probe-epochs", type=int, default=0,
                    help="epochs that train the heads alone first, on the frozen encoder's states (LP-FT)")
    ap.add_argument("--lr", type=float, default=5e-5, help="the encoder's and tag classifier's learning rate")
    ap.add_argument("--head-lr", type=float, default=1e-3, help="the pair and casualty-type heads' learning rate")
    ap.add_argument("--layers", type=int, nargs="*", default=[],
                    help="encoder layers whose mean the heads read (default: the last, which the tags read)")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--negative-ratio", type=float,
                    help="negative pairs kept per positive in a training document (default: the run's "
                    "relations.negative_ratio; a negative value keeps them all)")
    ap.add_argument("--out", help="a JSON file for every number, rewritten after each seed")
    ap.add_argument("--no-re3d", action="store_true", help="leave out the re3d validation documents")
    args = ap.parse_args(argv)
    import numpy as np
    import torch
    from transformers import AutoModelForTokenClassification, get_linear_schedule_with_warmup

    from compare_relations import split_scores
    from conflict_ie.config import TrainConfig
    from conflict_ie.corpus import documents_of, load_corpus
    from conflict_ie.evaluation import gold_relation_keys, strict_scores
    from conflict_ie.predictor import Predictor
    from conflict_ie.relation_data import gold_label_sets
    from conflict_ie.relation_inference import RelationExtractor

    torch.set_num_threads(2)
    run = Path(args.model)
    corpus, schema = load_corpus(run / "corpus")
    sets = {k: documents_of(corpus[k], schema) for k in ("train", "validation", "test")}
    if schema.name == "conflict" and not args.no_re3d:
        if RE3D_TEXT.is_dir():
            from effect_re3d import split_inputs

            sets["re3d validation"] = split_inputs()[1]["validation"]
        else:
            print(f"{RE3D_TEXT} is absent: no re3d numbers", file=sys.stderr)
    base = Predictor.from_pretrained(run, relations=False)
    shipped = RelationExtractor.from_pretrained(Path(args.relations or run / "relations"), schema=schema)
    enc = shipped.encoder
    attribute = enc.attributes[0] if enc.attributes else None
    symmetric = {r.label for r in schema.relations if r.symmetric}
    label_index = {lab: i for i, lab in enumerate(schema.entity_labels)}
    scored = [name for name in sets if name != "train"]

    def entity_f1(docs, spans):
        return strict_scores([d.spans for d in docs], spans, schema.entity_labels)["micro"]["f1"]

    results = {"settings": dict(vars(args)), "run": {}, "joint": []}
    base_spans = {}
    for name in scored:
        docs = sets[name]
        base_spans[name] = [[s for s, _ in o.spans] for o in base.ner([d.text for d in docs])]
        row = split_scores(shipped, docs, base_spans[name])
        results["run"][name] = {"entity_f1": entity_f1(docs, base_spans[name]), "gold": row["gold_f1"],
                                "end_to_end": row["e2e_f1"], "casualty_type": row["casualty_type_accuracy"]}
    print(json.dumps({"run": results["run"]}), file=sys.stderr)

    config = TrainConfig.load(run / "train_config.yaml")
    label_all_tokens = config.ner.label_all_tokens
    negative_ratio = config.relations.negative_ratio if args.negative_ratio is None else args.negative_ratio
    results["settings"]["negative_ratio"] = negative_ratio

    def item_of(doc, spans, gold=None):
        w = document_windows(doc, base.tokenizer, base, schema, label_all_tokens)
        return {"doc": doc, "windows": w, "pairs": pair_table(doc.text, spans, w["offsets"], enc, schema,
                                                               label_index, gold),
                "attrs": attribute_table(doc, w["offsets"], attribute)}

    all_train_items = [item_of(d, list(d.spans), gold_label_sets(d, schema)) for d in sets["train"]]
    eval_items = {name: [item_of(d, list(d.spans)) for d in sets[name]] for name in scored}
    gold_keys = {name: set().union(*(gold_relation_keys(d, symmetric) for d in sets[name])) for name in scored}

    def states_of(model, items):
        """Every document's stitched states, read once for all the scores of a split."""
        with torch.inference_mode():
            return [model.read(it["windows"])[1] for it in items]

    def relation_f1(model, name, items, states, tables=None):
        """Relation F1 of a split from its pair tables (by default the gold entities' own, built once)."""
        keys = set()
        with torch.inference_mode():
            for it, st, table in zip(items, states, tables or [it["pairs"] for it in items]):
                if len(table["ha"]):
                    p = torch.sigmoid(model.pair_logits(st, table)).numpy()
                    keys |= keys_of(table["rows"], p, schema, shipped.threshold, [it["doc"].id])
        return f1(gold_keys[name], keys, schema)

    def casualty_accuracy(model, items, states):
        right = total = 0
        with torch.inference_mode():
            for it, st in zip(items, states):
                at = it["attrs"]
                if len(at["a"]):
                    right += int((model.attr_logits(st, at).argmax(-1) == at["y"]).sum())
                    total += len(at["y"])
        return right / total if total else None

    def score(model, name):
        model.eval()
        predictor = Predictor(model.ner, base.tokenizer, schema, max_length=base.max_length, stride=base.stride,
                              decoding=base.decoding, word_probs=base.word_probs)
        docs, items = sets[name], eval_items[name]
        spans = [[s for s, _ in o.spans] for o in predictor.ner([d.text for d in docs])]
        states = states_of(model, items)
        own = [pair_table(d.text, sp, it["windows"]["offsets"], enc, schema, label_index)
               for d, sp, it in zip(docs, spans, items)]
        return {"entity_f1": entity_f1(docs, spans), "gold": relation_f1(model, name, items, states),
                "end_to_end": relation_f1(model, name, items, states, own),
                "casualty_type": casualty_accuracy(model, items, states)}

    def validation_f1(model):
        items = eval_items["validation"]
        return relation_f1(model, "validation", items, states_of(model, items))

    n_choices = len(attribute.choices) if attribute else 0
    for seed in args.seeds:
        torch.manual_seed(seed)
        np.random.seed(seed)
        rng = random.Random(seed)
        # Drawn once a seed, as the shipped relation training draws its rows once.
        train_items = [{**it, "pairs": sample_negatives(it["pairs"], negative_ratio, rng)} for it in all_train_items]
        ner = AutoModelForTokenClassification.from_pretrained(run, use_safetensors=True)
        model = make_joint_model(ner, len(schema.entity_labels), len(schema.relation_labels), n_choices,
                                 args.hidden, args.dropout, tuple(args.layers))
        heads = [p for n, p in model.named_parameters() if not n.startswith("ner.")]
        opt = torch.optim.AdamW([{"params": list(model.ner.parameters()), "lr": args.lr},
                                 {"params": heads, "lr": args.head_lr}], weight_decay=0.01)
        steps = args.epochs * len(train_items)
        sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
        curve = []
        t0 = time.perf_counter()
        if args.probe_epochs:
            # Linear probing, then fine-tuning (Kumar et al. 2022, "LP-FT"): new heads trained on
            # frozen features first, so that their first, random gradients do not reshape the encoder.
            model.eval()
            with torch.inference_mode():
                frozen = [model.read(it["windows"])[1].clone() for it in train_items]
            popt = torch.optim.AdamW(heads, lr=args.head_lr, weight_decay=0.01)
            for epoch in range(args.probe_epochs):
                model.train()
                total = 0.0
                for k in torch.randperm(len(train_items)).tolist():
                    loss = joint_loss(model, train_items[k], frozen[k])
                    if loss.requires_grad:
                        popt.zero_grad()
                        loss.backward()
                        popt.step()
                    total += float(loss.detach())
                if epoch + 1 == args.probe_epochs or (epoch + 1) % 10 == 0:
                    model.eval()
                    v = validation_f1(model)
                    curve.append({"probe_epoch": epoch + 1, "train_loss": round(total / max(len(train_items), 1), 4),
                                  "validation_gold": round(v, 4)})
                    print(json.dumps({"seed": seed, **curve[-1]}), file=sys.stderr)
            del frozen
        for epoch in range(args.epochs):
            model.train()
            total = 0.0
            for k in torch.randperm(len(train_items)).tolist():
                loss = joint_loss(model, train_items[k])
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                total += float(loss.detach())
            model.eval()
            v = validation_f1(model)
            curve.append({"epoch": epoch + 1, "train_loss": round(total / max(len(train_items), 1), 4),
                          "validation_gold": round(v, 4)})
            print(json.dumps({"seed": seed, **curve[-1]}), file=sys.stderr)
        row = {"seed": seed, "train_seconds": round(time.perf_counter() - t0, 1), "curve": curve}
        for name in scored:
            row[name] = score(model, name)
        results["joint"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "curve"}), file=sys.stderr)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1) + "\n")

    def stat(xs):
        xs = [x for x in xs if x is not None]
        if not xs:
            return "-"
        return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"

    print(f"model {run}; joint seeds {args.seeds}; {args.epochs} epochs")
    print("| set | score | the run's models | joint encoder |")
    print("|---|---|---|---|")
    for name in scored:
        for key in ("entity_f1", "gold", "end_to_end", "casualty_type"):
            base_v = results["run"][name][key]
            print(f"| {name} | {key} | {'-' if base_v is None else f'{base_v:.3f}'} | "
                  f"{stat([r[name][key] for r in results['joint']])} |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
