#!/usr/bin/env python
"""Relation model quality over several seeds, with the entity model held fixed.

Trains only the relation (+ casualty-type) model of a finished run, once per seed, on that
run's corpus, and scores it on a split: relations on gold entities and end to end (on the
run's own entity predictions), casualty-type accuracy, training time and tokens/s. Only
package calls that both relation designs have are used, so the same script measures an
older checkout (``PYTHONPATH=OLD/src python scripts/compare_relations.py ...``) beside this one.

    python scripts/compare_relations.py --run runs/demo --seeds 1 2 3 --split test --out rel.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a finished run (its corpus/, ner model and train_config.yaml)")
    ap.add_argument("--config", help="the training config (default: the run's train_config.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--split", nargs="+", default=["test"])
    ap.add_argument("--out", required=True, help="JSON file for the results")
    ap.add_argument("--label", default="", help="a name for this design in the results")
    ap.add_argument("--thresholds", type=float, nargs="*", default=[],
                    help="also score each split at these relation thresholds (the config's own is always scored)")
    args = ap.parse_args(argv)

    import conflict_ie
    from conflict_ie.config import TrainConfig
    from conflict_ie.corpus import documents_of, load_corpus
    from conflict_ie.predictor import Predictor
    from conflict_ie.relation_inference import RelationExtractor
    from conflict_ie.report import relation_report
    from conflict_ie.training import train_relations

    run = Path(args.run)
    config = TrainConfig.load(args.config or run / "train_config.yaml", args.set)
    corpus, schema = load_corpus(run / "corpus")
    ner = Predictor.from_pretrained(run, relations=False)
    splits = {name: documents_of(corpus[name], schema) for name in args.split}
    spans = {name: [[s for s, _ in o.spans] for o in ner.ner([d.text for d in docs])] for name, docs in splits.items()}
    results = {"label": args.label, "package": str(Path(conflict_ie.__file__).parent), "run": str(run),
               "overrides": args.set, "seeds": {}}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = replace(config, seed=seed)
            started = time.perf_counter()
            stats = train_relations(cfg, corpus, schema, Path(tmp) / "rel")
            seconds = time.perf_counter() - started
            rx = RelationExtractor.from_pretrained(Path(tmp) / "rel", schema=schema)
            row = {"train_seconds": round(seconds, 1), "train_stats": stats}
            for name, docs in splits.items():
                row[name] = split_scores(rx, docs, spans[name])
                # The threshold moves precision against recall; a design whose scores sit lower than
                # the other's can look worse at a threshold tuned for the other. Scored, not chosen.
                own, by_threshold = rx.threshold, {}
                for t in args.thresholds:
                    rx.threshold = t
                    mt, _ = relation_report(rx, docs, spans[name])
                    by_threshold[str(t)] = {"gold_f1": mt["relations"]["gold_entities"]["micro"]["f1"],
                                            "e2e_f1": mt["relations"]["end_to_end"]["micro"]["f1"]}
                rx.threshold = own
                if by_threshold:
                    row[name]["by_threshold"] = by_threshold
            record_seed(results, seed, row, args.split, args.out)
    print(json.dumps(results["summary"], indent=2))
    return 0


def record_seed(results: dict, seed: int, row: dict, splits, out) -> None:
    """Add one seed's scores to ``results``, print them as a JSON line, and rewrite ``out`` with the
    new summary: written after every seed, so a run stopped early keeps the seeds it finished.

    Example:
        >>> # row = {"train_seconds": 60.0, "test": split_scores(rx, docs, spans)}
        >>> # record_seed(results, 1, row, ["test"], "r.json")
    """
    results["seeds"][seed] = row
    print(json.dumps({"seed": seed, **{k: v for k, v in row.items() if k != "train_stats"}}), flush=True)
    results["summary"] = summarise(results["seeds"], splits)
    Path(out).write_text(json.dumps(results, indent=2) + "\n")


def split_scores(rx, docs, spans) -> dict:
    """Relation F1 on gold entities and end to end (on ``spans``), casualty-type accuracy and the
    candidate counts of an extractor on one split's documents.

    Example:
        >>> # split_scores(RelationExtractor.from_pretrained("runs/demo/relations", schema=s), docs, spans)["gold_f1"]
    """
    from conflict_ie.report import relation_report

    m, _ = relation_report(rx, docs, spans)
    return {"gold_f1": m["relations"]["gold_entities"]["micro"]["f1"],
            "e2e_f1": m["relations"]["end_to_end"]["micro"]["f1"],
            "casualty_type_accuracy": m.get("casualties", {}).get("type_accuracy"),
            "candidates": m["relation_candidates"]}


def summarise(seeds: dict, splits) -> dict:
    """Mean, standard deviation and values over the seeds, per split and score.

    Example:
        >>> row = {"train_seconds": 60.0, "test": {"gold_f1": 0.5, "e2e_f1": 0.25, "casualty_type_accuracy": None}}
        >>> summarise({1: row}, ["test"])["test.gold_f1"]
        {'mean': 0.5, 'sd': 0.0, 'values': [0.5]}
    """
    summary = {}
    for name in splits:
        for key in ("gold_f1", "e2e_f1", "casualty_type_accuracy"):
            vals = [r[name][key] for r in seeds.values() if r[name][key] is not None]
            if vals:
                summary[f"{name}.{key}"] = {"mean": round(statistics.mean(vals), 4),
                                            "sd": round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0,
                                            "values": [round(v, 4) for v in vals]}
    summary["train_seconds_mean"] = round(statistics.mean(r["train_seconds"] for r in seeds.values()), 1)
    return summary


if __name__ == "__main__":
    sys.exit(main())
