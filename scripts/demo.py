#!/usr/bin/env python
"""The demo: train the default conflict model on the bundled annotations and show it on the seed article.

    python scripts/demo.py                      # what `make demo` runs
    python scripts/demo.py --quick              # a few steps only (CI checks that the demo still runs)

Steps: build the corpus from annotations/conflict-news.json (document-level split, fixed seed),
fine-tune configs/train/conflict-minilm.yaml on the CPU (entities, then relations and casualty
types), evaluate on the test split, then predict on the seed article -- never in the training
data -- and score that prediction against annotations/seed-article.json.
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
ROOT = Path(__file__).resolve().parents[1]

QUICK = ["ner.max_steps=3", "ner.eval_steps=3", "relations.max_steps=2", "ner.logging_steps=1"]


def pipeline_agreement(run: Path, text: str, pred) -> dict:
    """The Predictor's entities against those of the plain pipeline call the model card gives."""
    from transformers import pipeline

    from conflict_ie.publishing import pipeline_call, pipeline_kwargs

    ner = pipeline("token-classification", model=str(run), device="cpu", **pipeline_kwargs(run))
    theirs = {(e["entity_group"], int(e["start"]), int(e["end"])) for e in ner(text)}
    mine = {(e.label, e.start, e.end) for e in pred.entities}
    return {"call": pipeline_call(run, "RUN"), "predictor": len(mine), "pipeline": len(theirs),
            "same": len(mine & theirs), "agreement": len(mine & theirs) / max(len(mine), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs/train/conflict-minilm.yaml"))
    ap.add_argument("--output", default=str(ROOT / "runs/demo"))
    ap.add_argument("--quick", action="store_true", help="a few training steps: checks the plumbing, not quality")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    os.chdir(ROOT)  # the config names annotations/ relative to the repository

    from conflict_ie.config import TrainConfig
    from conflict_ie.labelstudio import read_labelstudio
    from conflict_ie.output import format_entities
    from conflict_ie.predictor import Predictor
    from conflict_ie.report import evaluate_predictor
    from conflict_ie.run import train

    started = time.time()
    config = TrainConfig.load(args.config, (QUICK if args.quick else []) + args.set)
    run = train(config, output_dir=args.output)
    trained = time.time() - started

    predictor = Predictor.from_pretrained(run)
    (seed,) = read_labelstudio(ROOT / "annotations/seed-article.json", predictor.schema).documents
    pred = predictor.predict(seed.text)
    seed_metrics, _ = evaluate_predictor(predictor, [seed])
    seed_metrics["plain_pipeline"] = pipeline_agreement(run, seed.text, pred)
    (run / "seed_metrics.json").write_text(json.dumps(seed_metrics, indent=2) + "\n")
    test = json.loads((run / "metrics.json").read_text())

    print(f"\n=== Seed article ({len(seed.text.split())} words): {len(pred.entities)} entities predicted, "
          f"{len(seed.spans)} annotated\n")
    print(format_entities(pred))
    if pred.relations:
        print(f"=== Relations ({len(pred.relations)})\n")
        for r in pred.relations:
            print(f"  {r.head.text!r} --{r.label}--> {r.tail.text!r}  ({r.score:.2f})")
    if pred.casualties:
        print(f"\n=== Casualty records ({len(pred.casualties)})\n")
        print(f"  {'text':<40} {'type':<12} {'min':>6} {'max':>6}  location / perpetrator")
        for c in pred.casualties:
            print(f"  {c.text[:40]:<40} {str(c.casualty_type):<12} {str(c.count_min):>6} {str(c.count_max):>6}  "
                  f"{c.location} / {c.perpetrator}")

    def f1(m, *path):
        node = m
        for p in path:
            node = node[p]
        return f"{node:.3f}"

    print("\n=== Scores (micro F1)\n")
    print(f"  {'':<28} {'test split':>12} {'seed article':>14}")
    rows = [("entities, strict", ("ner", "strict", "micro", "f1")),
            ("entities, lenient", ("ner", "lenient", "micro", "f1")),
            ("entities, partial overlap", ("ner", "partial_overlap", "micro", "f1"))]
    if "relations" in test:
        rows += [("relations, gold entities", ("relations", "gold_entities", "micro", "f1")),
                 ("relations, end to end", ("relations", "end_to_end", "micro", "f1")),
                 ("casualty type accuracy", ("casualties", "type_accuracy"))]
    for name, path in rows:
        print(f"  {name:<28} {f1(test, *path):>12} {f1(seed_metrics, *path):>14}")
    print(f"\n  test split: {test['n_documents']} documents, {test['n_gold_entities']} entities")
    agree = seed_metrics["plain_pipeline"]
    print(f"\n  the run in a plain transformers pipeline, as the model card calls it ({agree['call']}):\n"
          f"  {agree['same']} of the Predictor's {agree['predictor']} entities on the seed article, identical "
          f"({agree['agreement']:.0%}); {agree['pipeline']} from the pipeline")
    window = json.loads((run / "training_info.json").read_text()).get("window_selection")
    if window:
        print(f"  window chosen: {window['chosen']} tokens (validation strict F1 and seconds per length: "
              f"{window['lengths']})")
    print(f"\nTrained and evaluated in {trained / 60:.1f} min; total {(time.time() - started) / 60:.1f} min.")
    print(f"Run folder: {run}\nReport:     {run / 'report' / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
