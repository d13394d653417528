#!/usr/bin/env python
"""Tune the re3d entity model on the VALIDATION split only; writes benchmarks/re3d/docs/re3d-tuning.md.

    python benchmarks/re3d/tune_re3d.py [--corpus runs/re3d/corpus] [--only NAME ...] [--seed 2]
    python benchmarks/re3d/tune_re3d.py --decoding RUN ...      # re-score trained runs under every decoding
    python benchmarks/re3d/tune_re3d.py --ensemble RUN ...      # runs alone, averaged probabilities and weights
    python benchmarks/re3d/tune_re3d.py --relations [NAME ...]  # relation settings x thresholds
    python benchmarks/re3d/tune_re3d.py --train-fraction 0.5 0.75  # learning curve: part of the training documents
    python benchmarks/re3d/tune_re3d.py --page                  # rewrite the page from runs/re3d-tuning/results.json

The corpus is the one bench_re3d.py builds. Each entity setting is a set of config overrides on
configs/re3d-minilm.yaml (beside this script; its ``schema`` is set to re3d-schema.yaml by
absolute path, see :func:`load_config`); the entity model is trained alone (relations off), and
the score is the best validation entity F1 (exact spans, whole documents) that early stopping
kept. The test split is never looked at. What wins becomes the config's default by editing the
YAML by hand (so that the change is reviewed and committed; its comments say why). The page is
written from the results file alone: every number on it was measured by this script.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The benchmark's paths and its config loader (which sets the schema by absolute path); this
# folder is on sys.path whenever a script of it runs.
from bench_re3d import HERE, ROOT, SCHEMA, load_config  # noqa: E402,F401

# Overrides are relative to the config as it is now, so the settings run before a default changed
# spell out the old value (label_all_tokens=false before the first sweep, decoding=argmax before
# the decoding comparison below) to stay reproducible.
ARGMAX = "ner.decoding=argmax"
SETTINGS = {
    "baseline (128 tokens, batch 8, lr 2e-4, first sub-token)": [ARGMAX, "ner.label_all_tokens=false"],
    "lr 1e-4": [ARGMAX, "ner.label_all_tokens=false", "ner.learning_rate=1e-4"],
    "lr 3e-4, 30 epochs": [ARGMAX, "ner.label_all_tokens=false", "ner.learning_rate=3e-4", "ner.epochs=30",
                           "ner.early_stopping_patience=6"],
    "label all sub-tokens": [ARGMAX],
    "label all, batch 4": [ARGMAX, "ner.batch_size=4"],
    "label all, label smoothing 0.1": [ARGMAX, "ner.label_smoothing=0.1"],
    "label all, 256-token windows, batch 4": [ARGMAX, "ner.max_length=256", "ner.stride=64", "ner.batch_size=4"],
    # Selected and scored with Viterbi decoding (the default since the decoding comparison).
    "Viterbi: label all": [],
    "Viterbi: label all, 256-token windows, batch 4": ["ner.max_length=256", "ner.stride=64", "ner.batch_size=4"],
    "Viterbi: label all, 256-token windows, batch 8": ["ner.max_length=256", "ner.stride=64"],
    # Early stopping kept models from around epoch 9 of 20 (seed 1), while the linear schedule still had
    # about 60% of its learning rate: a 10-epoch schedule decays fully by then.
    "Viterbi: label all, 10 epochs, no early stop": ["ner.epochs=10", "ner.early_stopping_patience=10"],
}


# Relation settings: the relation model alone (on gold entities), scored on validation pairs of gold
# entities at each threshold in THRESHOLDS (the threshold is an inference setting, so no retraining).
# Spelled out against the config as it is now (the sweep's winner became its default).
_REL_BEFORE = ["relations.negative_ratio=1", "relations.epochs=3"]
RELATION_SETTINGS = {
    "1 negative per positive, 3 epochs, lr 1e-4, neighbouring sentences": _REL_BEFORE,
    "3 negatives per positive": ["relations.negative_ratio=3", "relations.epochs=3"],
    "3 negatives per positive, 6 epochs": ["relations.negative_ratio=3", "relations.epochs=6"],
    "3 negatives per positive, same sentence only": ["relations.negative_ratio=3", "relations.epochs=3",
                                                     "relations.max_sentence_distance=0"],
}
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)

DECODINGS = {  # name -> (decoding, word_probs)
    "argmax, first sub-token": ("argmax", "first"),
    "argmax, mean over sub-tokens": ("argmax", "mean"),
    "Viterbi (BIO), first sub-token": ("viterbi", "first"),
    "Viterbi (BIO), mean over sub-tokens": ("viterbi", "mean"),
}


def update_results(results_file: Path, key: str, value) -> dict:
    """Set one key of the results file, re-reading it first (another sweep may have written to it)."""
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    results[key] = value
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(results, indent=1) + "\n")
    return results


def validation_f1(predictor, docs, schema) -> float:
    """Exact-span micro F1 of a predictor on documents (whole documents, as the benchmark scores)."""
    from conflict_ie.evaluation import strict_scores

    pred = [[s for s, _ in out.spans] for out in predictor.ner([d.text for d in docs])]
    return strict_scores([d.spans for d in docs], pred, schema.entity_labels)["micro"]["f1"]


def compare_decodings(args) -> int:
    """Every decoding, scored on the validation split with already-trained runs (no training)."""
    import statistics

    from conflict_ie.corpus import documents_of, load_corpus
    from conflict_ie.predictor import Predictor

    ds, schema = load_corpus(args.corpus)
    docs = documents_of(ds["validation"], schema)
    table = {}
    for name, (decoding, word_probs) in DECODINGS.items():
        scores = []
        for run in args.decoding:
            predictor = Predictor.from_pretrained(run, relations=False, decoding=decoding)
            predictor.word_probs = word_probs
            scores.append(validation_f1(predictor, docs, schema))
        table[name] = {"runs": [str(Path(r).resolve().relative_to(ROOT)) if Path(r).resolve().is_relative_to(ROOT)
                                else str(r) for r in args.decoding],
                       "scores": scores, "mean": statistics.mean(scores)}
        print(f"{name}: " + " ".join(f"{x:.3f}" for x in scores), flush=True)
    results = update_results(Path(args.out) / "results.json", "_decoding", table)
    write_page(results, args)
    return 0


class _MeanOfModels:
    """Token classifiers whose probabilities are averaged: quacks like one model for the Predictor."""

    def __init__(self, models):
        self.models = models
        self.config = models[0].config

    def eval(self):
        return self

    def to(self, device):
        for m in self.models:
            m.to(device)
        return self

    def __call__(self, **inputs):
        import types

        import torch

        probs = torch.stack([m(**inputs).logits.float().softmax(-1) for m in self.models]).mean(0)
        return types.SimpleNamespace(logits=probs.log())  # softmax(log p) == p: the Predictor's softmax is a no-op


def compare_ensembles(args) -> int:
    """Seeds alone, as a probability-averaging ensemble, and weight-averaged (validation split)."""
    import copy
    import statistics

    from conflict_ie.corpus import documents_of, load_corpus
    from conflict_ie.predictor import Predictor

    ds, schema = load_corpus(args.corpus)
    docs = documents_of(ds["validation"], schema)
    alone = [Predictor.from_pretrained(r, relations=False) for r in args.ensemble]
    first = alone[0]
    settings = dict(max_length=first.max_length, stride=first.stride, decoding=first.decoding,
                    word_probs=first.word_probs)
    ensemble = Predictor(_MeanOfModels([p.model for p in alone]), first.tokenizer, first.schema, **settings)
    states = [p.model.state_dict() for p in alone]
    soup_model = copy.deepcopy(first.model)
    soup_model.load_state_dict({k: sum(s[k].float() for s in states) / len(states) if v.is_floating_point() else v
                                for k, v in states[0].items()})
    soup = Predictor(soup_model, first.tokenizer, first.schema, **settings)
    scores = [validation_f1(p, docs, schema) for p in alone]
    table = {"runs": [str(r) for r in args.ensemble], "decoding": settings["decoding"],
             "word_probs": settings["word_probs"], "alone": scores, "alone_mean": statistics.mean(scores),
             "ensemble": validation_f1(ensemble, docs, schema), "weight_average": validation_f1(soup, docs, schema)}
    print(json.dumps(table, indent=1))
    write_page(update_results(Path(args.out) / "results.json", "_ensemble", table), args)
    return 0


def learning_curve(args) -> int:
    """The default setting trained on a random part of the training documents, scored on validation:
    whether more training documents still help (validation-only evidence for refitting on more)."""
    import random

    import datasets

    from conflict_ie.corpus import load_corpus, save_corpus
    from conflict_ie.run import train

    corpus, schema = load_corpus(args.corpus)
    n_train = len(corpus["train"])
    for fraction in args.train_fraction:
        keep = sorted(random.Random(0).sample(range(n_train), round(fraction * n_train)))
        part = datasets.DatasetDict({**corpus, "train": corpus["train"].select(keep)})
        corpus_dir = save_corpus(part, schema, Path(args.out) / f"corpus-train-{fraction}")
        config = load_config(args.config, [f"seed={args.seed}", "relations.enabled=false", "refit=false"])
        t0 = time.time()
        run = train(config, corpus_dir=corpus_dir, output_dir=Path(args.out) / f"curve-{fraction}-seed-{args.seed}")
        info = json.loads((run / "training_info.json").read_text())
        results_file = Path(args.out) / "results.json"
        table = (json.loads(results_file.read_text()) if results_file.exists() else {}).get("_learning_curve", {})
        table[f"{fraction} seed {args.seed}"] = {
            "fraction": fraction, "seed": args.seed, "documents": len(keep),
            "entities": sum(len(s) for s in part["train"]["spans"]),
            "validation_entity_f1": info["best_validation_entity_f1"], "minutes": (time.time() - t0) / 60}
        results = update_results(results_file, "_learning_curve", table)
        print(f"{fraction} of the training documents: validation F1 {info['best_validation_entity_f1']:.3f}",
              flush=True)
    write_page(results, args)
    return 0


def relation_f1_by_threshold(run_dir, docs, schema) -> dict[float, float]:
    """Validation relation F1 on gold entities (strict: spans, direction, label) at each threshold."""
    from conflict_ie.evaluation import prf
    from conflict_ie.relation_inference import RelationExtractor

    rx = RelationExtractor.from_pretrained(run_dir, schema=schema, threshold=0.0)  # every score, cut below
    key = lambda d, h, t, l: (d.id, h.start, h.end, t.start, t.end, l)  # noqa: E731
    gold, scored = set(), []
    for doc in docs:
        by_id = doc.span_by_id()
        gold |= {key(doc, by_id[r.head], by_id[r.tail], r.label) for r in doc.relations}
        rels, _ = rx.classify(doc.text, doc.spans)
        scored += [(key(doc, h, t, l), s) for h, t, l, s in rels]
    out = {}
    for th in THRESHOLDS:
        pred = {k for k, s in scored if s >= th}
        out[th] = prf(len(gold & pred), len(pred), len(gold))["f1"]
    return out


def tune_relations(args) -> int:
    """Train the relation model alone for each setting; score it on validation at each threshold."""
    from conflict_ie.corpus import documents_of, load_corpus
    from conflict_ie.training import train_relations

    corpus, schema = load_corpus(args.corpus)
    docs = documents_of(corpus["validation"], schema)
    results_file = Path(args.out) / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    table = results.setdefault("_relations", {})
    for n, (name, overrides) in enumerate(RELATION_SETTINGS.items()):
        if args.relations and name not in args.relations:
            continue
        config = load_config(args.config, [*overrides, "seed=1"])
        t0 = time.time()
        out = Path(args.out) / f"relations-{n}"
        train_relations(config, corpus, schema, out)
        f1 = relation_f1_by_threshold(out, docs, schema)
        table[name] = {"overrides": overrides, "f1_by_threshold": {str(k): v for k, v in f1.items()},
                       "minutes": (time.time() - t0) / 60}
        results = update_results(results_file, "_relations", table)
        print(f"{name}: " + " ".join(f"{k}: {v:.3f}" for k, v in f1.items()), flush=True)
    write_page(results, args)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(ROOT / "runs/re3d/corpus"))
    ap.add_argument("--config", default=str(HERE / "configs/re3d-minilm.yaml"))
    ap.add_argument("--out", default=str(ROOT / "runs/re3d-tuning"))
    ap.add_argument("--doc", default=str(HERE / "docs/re3d-tuning.md"))
    ap.add_argument("--only", nargs="*", help="names of settings to run (default: all)")
    ap.add_argument("--seed", type=int, default=1, help="training seed (a second seed checks a close call)")
    ap.add_argument("--decoding", nargs="+", metavar="RUN",
                    help="instead of training: score every decoding on the validation split with these trained runs")
    ap.add_argument("--relations", nargs="*", metavar="NAME",
                    help="tune the relation model instead (the named RELATION_SETTINGS, or all)")
    ap.add_argument("--page", action="store_true", help="only rewrite the page from the results file")
    ap.add_argument("--ensemble", nargs="+", metavar="RUN",
                    help="instead of training: score these runs alone, their averaged probabilities (an ensemble) "
                         "and their averaged weights (a uniform soup) on the validation split")
    ap.add_argument("--train-fraction", nargs="+", type=float, metavar="F",
                    help="instead of the sweep: the default setting trained on this fraction of the training "
                         "documents (a learning curve on the validation split)")
    args = ap.parse_args(argv)
    if args.page:
        write_page(json.loads((Path(args.out) / "results.json").read_text()), args)
        return 0
    if args.ensemble:
        return compare_ensembles(args)
    if args.decoding:
        return compare_decodings(args)
    if args.relations is not None:
        return tune_relations(args)
    if args.train_fraction:
        return learning_curve(args)

    from conflict_ie.run import train

    results_file = Path(args.out) / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for n, (name, overrides) in enumerate(SETTINGS.items()):
        if args.only and name not in args.only:
            continue
        # Scored on validation, so no refit on it (the config's refit is for the benchmark).
        config = load_config(args.config, [*overrides, f"seed={args.seed}", "relations.enabled=false", "refit=false"])
        t0 = time.time()
        suffix = "" if args.seed == 1 else f"-seed-{args.seed}"
        run = train(config, corpus_dir=args.corpus, output_dir=Path(args.out) / f"setting-{n}{suffix}")
        info = json.loads((run / "training_info.json").read_text())
        entry = {"overrides": overrides, "decoding": config.ner.decoding, "seed": args.seed,
                 "validation_entity_f1": info["best_validation_entity_f1"],
                 "steps": info["global_steps"], "minutes": (time.time() - t0) / 60}
        results = update_results(results_file, name if args.seed == 1 else f"{name} (seed {args.seed})", entry)
        print(f"{name}: validation F1 {info['best_validation_entity_f1']:.3f}", flush=True)
    write_page(results, args)
    return 0


def write_page(results, args) -> None:
    """The tuning page from the results file (training settings, then decodings); nothing on it but
    what the file holds. Results of settings no longer in :data:`SETTINGS` are left off (named on stderr)."""
    from conflict_ie.run import hardware

    results_all = results
    decodings = results.get("_decoding")
    relations = results.get("_relations")
    results = {k: v for k, v in results.items() if not k.startswith("_")}
    dropped = [k for k in results if k.split(" (seed ")[0] not in SETTINGS]
    if dropped:
        print("left off the page (no longer in SETTINGS): " + "; ".join(dropped), file=sys.stderr)
    results = {k: v for k, v in results.items() if k not in dropped}
    lines = ["# Tuning the re3d entity model (validation split only)", "",
             f"`python benchmarks/re3d/tune_re3d.py [--seed N]`; machine: {hardware()}; seed 1 unless named;",
             "relations off; the score is the best validation entity F1 (exact spans, whole documents) kept by",
             "early stopping.",
             "The test split is not used.",
             "Decoding is the one used for model selection and scoring; settings run before decoding became a",
             "setting (see below) used argmax, and scores are comparable within one decoding only.",
             "", "| setting | overrides | decoding | validation F1 | steps | minutes |", "|---|---|---|---|---|---|"]
    for name, r in sorted(results.items(), key=lambda kv: (kv[1].get("decoding", "argmax"),
                                                            -kv[1]["validation_entity_f1"])):
        lines.append(f"| {name} | {' '.join(f'`{o}`' for o in r['overrides']) or '—'} | "
                     f"{r.get('decoding', 'argmax')} | {r['validation_entity_f1']:.3f} | {r['steps']} | "
                     f"{r['minutes']:.1f} |")
    not_run = [name for name in SETTINGS if name not in results]
    best_of = {}  # name -> mean over the seeds it was run with
    for key, r in results.items():
        best_of.setdefault(key.split(" (seed ")[0], []).append(r["validation_entity_f1"])
    current = [n for n in best_of if ARGMAX not in SETTINGS.get(n, [ARGMAX])]  # run with today's decoding
    lines += ["", "Mean over the seeds run, settings with the current decoding:", ""]
    lines += [f"- {n}: {sum(best_of[n]) / len(best_of[n]):.3f} ({len(best_of[n])} seed(s))"
              for n in sorted(current, key=lambda n: -sum(best_of[n]) / len(best_of[n]))]
    config = Path(args.config).resolve()
    config = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
    lines += ["", f"What was chosen from these numbers is the config, `{config}`; its comments say why."]
    if not_run:
        lines += ["", "Declared but not run in this sweep (time): " + "; ".join(not_run) + "."]
    if decodings:
        runs = next(iter(decodings.values()))["runs"]
        lines += ["", "## Decoding (validation split, no retraining)", "",
                  f"`python benchmarks/re3d/tune_re3d.py --decoding {' '.join(runs)}`: the same trained models (the",
                  "benchmark's seeds as they were before this comparison: label-all, selected with argmax decoding),",
                  "each word tagged four ways. Viterbi (BIO) is the likeliest tag sequence in which every `I-X`",
                  "follows `B-X` or `I-X`; argmax takes each word's likeliest tag, as a plain `transformers`",
                  "pipeline does.", "",
                  "| decoding | " + " | ".join(f"`{r}`" for r in runs) + " | mean |",
                  "|---|" + "---|" * (len(runs) + 1)]
        for name, r in decodings.items():
            lines.append(f"| {name} | " + " | ".join(f"{x:.3f}" for x in r["scores"]) + f" | {r['mean']:.3f} |")
        lines += ["", "The last row is the default since then: `ner.decoding: viterbi`, and a model trained with",
                  "every sub-token labelled reads a word as the mean over its sub-tokens (`conflict_ie.json`)."]
    ensemble = results_all.get("_ensemble")
    if ensemble:
        lines += ["", "## Averaging or ensembling seeds (validation split, no retraining)", "",
                  f"`python benchmarks/re3d/tune_re3d.py --ensemble {' '.join(ensemble['runs'])}` (decoding "
                  f"{ensemble['decoding']}, word probabilities {ensemble['word_probs']}):", "",
                  "| model | validation F1 |", "|---|---|",
                  "| each seed alone | " + ", ".join(f"{x:.3f}" for x in ensemble["alone"])
                  + f" (mean {ensemble['alone_mean']:.3f}) |",
                  f"| ensemble: probabilities averaged over the seeds | {ensemble['ensemble']:.3f} |",
                  f"| uniform soup: weights averaged over the seeds | {ensemble['weight_average']:.3f} |", "",
                  "An ensemble costs one forward pass per member at prediction time and is not one checkpoint",
                  "that plain `transformers` loads; a weight average is, but the seeds start from different",
                  "random classifier heads."]
    curve = results_all.get("_learning_curve")
    if curve:
        lines += ["", "## Learning curve (validation split)", "",
                  "`python benchmarks/re3d/tune_re3d.py --train-fraction F [--seed N]`: the chosen setting trained",
                  "on a random part of the training documents (the same part for every seed), scored on validation.",
                  "Full training split: the rows of the chosen setting in the first table.", "",
                  "| training documents | entities | seed | validation F1 | minutes |", "|---|---|---|---|---|"]
        for r in sorted(curve.values(), key=lambda r: (r["fraction"], r["seed"])):
            lines.append(f"| {r['documents']} ({r['fraction']:.0%}) | {r['entities']} | {r['seed']} | "
                         f"{r['validation_entity_f1']:.3f} | {r['minutes']:.1f} |")
    if relations:
        lines += ["", "## Relations (validation split, gold entities)", "",
                  "`python benchmarks/re3d/tune_re3d.py --relations`: the relation model trained alone (seed 1) on the",
                  "training split's gold entities, then scored on the validation split's gold entities (strict:",
                  "both spans, direction and label) at several probability thresholds (an inference setting,",
                  "`relations.threshold`).", "",
                  "| setting | overrides | " + " | ".join(f"threshold {t}" for t in THRESHOLDS) + " | minutes |",
                  "|---|---|" + "---|" * (len(THRESHOLDS) + 1)]
        for name, r in relations.items():
            lines.append(f"| {name} | {' '.join(f'`{o}`' for o in r['overrides']) or '—'} | "
                         + " | ".join(f"{r['f1_by_threshold'][str(t)]:.3f}" for t in THRESHOLDS)
                         + f" | {r['minutes']:.1f} |")
    Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
    Path(args.doc).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    sys.exit(main())
