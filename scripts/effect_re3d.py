#!/usr/bin/env python
"""What the re3d documents add: the bundled-only config against the full config, on text neither saw.

Both configs are trained on fixed document-level splits made here, so that the two runs are scored
on the same documents and the held-out re3d documents are never trained on in either run:

- the bundled articles are split as the demo splits them (``configs/train/conflict-minilm.yaml``'s
  ``split``), so the bundled test split is the demo's;
- the re3d documents (``annotations/re3d-conflict``, text from ``../shared/data/re3d``) are split
  by document, ``--re3d-split`` train/validation/held-out (default 0.7/0.1/0.2, seed 13);
- **bundled-only**: the bundled config on bundled train/validation;
- **full**: the full config on bundled + re3d train, bundled + re3d validation.

Each run is scored on the held-out re3d documents, the bundled test split and the seed article
(``annotations/seed-article.json``, real news, never trained on): entities strict and
lenient (micro, and strict per label), relations on gold entities and end to end, casualty-type
accuracy. Results go to ``--out`` as they finish (a run already there is not trained again, so the
script can be stopped and started again); the page is written from that file.

    python scripts/effect_re3d.py --seeds 1 2 3 --relation-seeds 1 --out docs/results/re3d-effect.json \\
        --page docs/re3d-effect.md

``--relation-seeds`` are the seeds whose runs also train the relation model (the slow part: about
three quarters of a run on a CPU); a seed added there later trains only the relation model of its
finished runs. ``--page-only`` rewrites the page from ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"bundled-only": ROOT / "configs/train/conflict-minilm.yaml",
           "full": ROOT / "configs/train/conflict-full.yaml"}
EVAL_SETS = {"re3d_heldout": "held-out re3d documents", "bundled_test": "bundled test split",
             "seed_article": "seed article"}


def split_inputs(re3d_split: tuple[float, float, float] = (0.7, 0.1, 0.2), seed: int = 13):
    """The bundled articles split as the demo splits them, the re3d documents split by document
    (``train``/``validation``/``test``, the last being the held-out set), and the schema.

    ``scripts/bench_predict.py`` takes its re3d validation documents from here too.
    """
    from conflict_ie.config import SplitSpec, TrainConfig
    from conflict_ie.corpus import split_documents
    from conflict_ie.run import read_inputs

    bundled_cfg = TrainConfig.load(CONFIGS["bundled-only"])
    full_cfg = TrainConfig.load(CONFIGS["full"])
    bundled, schema = read_inputs(replace(bundled_cfg, inputs=tuple(str(ROOT / p) for p in bundled_cfg.inputs)))
    everything, _ = read_inputs(replace(full_cfg, inputs=tuple(str(ROOT / p) for p in full_cfg.inputs)))
    bundled_ids = {d.id for d in bundled}
    re3d = [d for d in everything if d.id not in bundled_ids]
    return split_documents(bundled, bundled_cfg.split), split_documents(re3d, SplitSpec(*re3d_split, seed=seed)), schema


def make_splits(re3d_split: tuple[float, float, float], seed: int):
    """The documents of every split, by name (see the module docstring), and the schema."""
    b, r, schema = split_inputs(re3d_split, seed)
    corpora = {
        "bundled-only": {"train": b["train"], "validation": b["validation"], "test": b["test"]},
        "full": {"train": b["train"] + r["train"], "validation": b["validation"] + r["validation"],
                 "test": b["test"]},
    }
    from conflict_ie.labelstudio import read_labelstudio

    seed_article = read_labelstudio(ROOT / "annotations/seed-article.json", schema).documents
    return corpora, {"re3d_heldout": r["test"], "bundled_test": b["test"], "seed_article": seed_article}, schema


def scores(metrics: dict) -> dict:
    """The numbers the page shows, from ``evaluate_predictor``'s metrics."""
    ner = metrics["ner"]
    out = {"strict_f1": ner["strict"]["micro"]["f1"], "strict_precision": ner["strict"]["micro"]["precision"],
           "strict_recall": ner["strict"]["micro"]["recall"], "lenient_f1": ner["lenient"]["micro"]["f1"],
           "per_label": {k: {"f1": v["f1"], "support": v["support"]} for k, v in ner["strict"]["per_label"].items()}}
    if "relations" in metrics:
        out["relations_gold_f1"] = metrics["relations"]["gold_entities"]["micro"]["f1"]
        out["relations_e2e_f1"] = metrics["relations"]["end_to_end"]["micro"]["f1"]
        cas = metrics.get("casualties") or {}
        out["casualty_type_accuracy"] = cas.get("type_accuracy")
        out["casualty_n"] = cas.get("n")
    return out


def annotations_digest() -> str:
    """A SHA-256 over the annotation files both configs read: results of two versions never mix."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted([ROOT / "annotations/conflict-news.json", ROOT / "annotations/seed-article.json",
                        *(ROOT / "annotations/re3d-conflict").rglob("*.json")]):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def parse_variant(text: str) -> tuple[str, str, list[str]]:
    """``NAME=BASE:KEY=VALUE[,KEY=VALUE...]`` -> ``(name, base config name, overrides)``.

    >>> parse_variant("full-weighted=full:ner.class_weight_power=0.5")
    ('full-weighted', 'full', ['ner.class_weight_power=0.5'])
    """
    name, _, rest = text.partition("=")
    base, _, overrides = rest.partition(":")
    if not name or base not in CONFIGS or not overrides:
        raise SystemExit(f"--variant {text!r}: expected NAME=BASE:KEY=VALUE[,KEY=VALUE], BASE one of {list(CONFIGS)}")
    return name, base, overrides.split(",")


def run_one(name: str, seed: int, with_relations: bool, corpus_dir: Path, work: Path, eval_docs: dict,
            base: str | None = None, overrides: list[str] = ()) -> dict:
    from conflict_ie.config import TrainConfig
    from conflict_ie.corpus import load_corpus
    from conflict_ie.predictor import Predictor
    from conflict_ie.report import evaluate_predictor
    from conflict_ie.run import train
    from conflict_ie.training import train_relations

    config = replace(TrainConfig.load(CONFIGS[base or name], list(overrides)), seed=seed)
    out = work / name / f"seed-{seed}"
    timings = {}
    if not (out / "training_info.json").exists():
        started = time.perf_counter()
        train(config, corpus_dir=corpus_dir, output_dir=out, relations=with_relations)
        timings["train_seconds"] = round(time.perf_counter() - started, 1)
    elif with_relations and not (out / "relations").exists():
        # A seed added to --relation-seeds later: only the relation model is trained.
        started = time.perf_counter()
        corpus, schema = load_corpus(corpus_dir)
        train_relations(config, corpus, schema, out / "relations")
        timings["relation_only_train_seconds"] = round(time.perf_counter() - started, 1)
    predictor = Predictor.from_pretrained(out, relations=with_relations)
    info = json.loads((out / "training_info.json").read_text())
    result = {"config": name, "seed": seed, "relations": with_relations, "run": str(out), **timings,
              "overrides": list(overrides), "validation_entity_f1": info.get("best_validation_entity_f1"),
              "ner_train_seconds": info.get("ner_train_seconds"),
              "relation_train_seconds": info.get("relation_train_seconds"),
              "corpus_sizes": info.get("corpus_sizes")}
    for key, docs in eval_docs.items():
        result[key] = scores(evaluate_predictor(predictor, docs)[0])
    return result


def _stat(values: list[float]) -> str:
    if not values:
        return "—"
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    seeds = " / ".join(f"{v:.3f}" for v in values)
    return f"{mean:.3f} ± {sd:.3f} ({seeds})" if len(values) > 1 else f"{mean:.3f} (one seed)"


def _values(results: list[dict], name: str, eval_set: str, key: str, label: str | None = None) -> list[float]:
    vals = []
    for r in sorted(results, key=lambda r: r["seed"]):
        if r["config"] != name:
            continue
        if eval_set is None:  # a run-level number
            v = r.get(key)
        else:
            block = r[eval_set]
            v = block["per_label"].get(label, {}).get("f1") if label else block.get(key)
        if v is not None:
            vals.append(v)
    return vals


def _verdict(a: list[float], b: list[float]) -> str:
    if not a or not b:
        return "—"
    diff = statistics.mean(b) - statistics.mean(a)
    noise = max(statistics.stdev(a) if len(a) > 1 else 0.0, statistics.stdev(b) if len(b) > 1 else 0.0)
    if len(a) < 2 or len(b) < 2:
        return f"{diff:+.3f} (one seed: noise unknown)"
    return f"{diff:+.3f}" + (" (within seed noise)" if abs(diff) <= noise else "")


METRICS = (("strict_f1", "entities, strict micro F1"), ("lenient_f1", "entities, lenient micro F1"),
           ("strict_precision", "entities, strict precision"), ("strict_recall", "entities, strict recall"),
           ("relations_gold_f1", "relations on gold entities, F1"), ("relations_e2e_f1", "relations end to end, F1"),
           ("casualty_type_accuracy", "casualty-type accuracy"))


def write_page(data: dict, path: Path) -> None:
    results = data["results"]
    sizes = data["sizes"]
    # The seeds that finished, not those asked for: the page is rewritten after every run.
    entity_seeds = sorted({r["seed"] for r in results})
    relation_seeds = sorted({r["seed"] for r in results if r["relations"]})
    lines = [
        "# What the re3d documents add",
        "",
        "Written by `scripts/effect_re3d.py` from `docs/results/re3d-effect.json`; do not edit by hand.",
        "",
        *([data["note"], ""] if data.get("note") else []),
        "Two configs, trained on fixed document-level splits so that both are scored on the same documents:",
        "**bundled-only** (`configs/train/conflict-minilm.yaml`, the demo's) on the bundled articles, and "
        "**full** (`configs/train/conflict-full.yaml`) on the bundled articles plus the re3d documents "
        "annotated in the conflict schema (`annotations/re3d-conflict`). The bundled articles are split as "
        "the demo splits them; the re3d documents are split by document "
        f"{'/'.join(str(x) for x in data['re3d_split'])} (train/validation/held-out, seed {data['re3d_seed']}). "
        "The held-out re3d documents are never trained on in either run; the bundled test split is the demo's; "
        "the seed article (real news) is in neither run's training data. Documents in each set:",
        "",
        "| | train | validation | held-out re3d | bundled test | seed article |",
        "|---|---|---|---|---|---|",
    ]
    for name in CONFIGS:
        s = sizes[name]
        lines.append(f"| {name} | {s['train']} | {s['validation']} | {sizes['re3d_heldout']} | "
                     f"{sizes['bundled_test']} | {sizes['seed_article']} |")
    seeds_line = "Entity scores are over seeds " + ", ".join(map(str, entity_seeds))
    if relation_seeds == entity_seeds:
        seeds_line += ", relations and casualty type too."
    else:
        seeds_line += ("; the relation model (relations and casualty type) was trained for seeds " +
                       ", ".join(map(str, relation_seeds)) + " only, since it is about three quarters of a run's "
                       "time on this CPU.")
    lines += ["", "Mean ± standard deviation over the seeds, each seed's value in brackets. A difference is "
              "called within seed noise when it is no larger than the larger standard deviation. " + seeds_line,
              "Trials (below) train the entity model only.", ""]
    for eval_set, title in EVAL_SETS.items():
        lines += [f"## On the {title}", "", "| metric | bundled-only | full | full − bundled-only |",
                  "|---|---|---|---|"]
        for key, label in METRICS:
            a, b = _values(results, "bundled-only", eval_set, key), _values(results, "full", eval_set, key)
            lines.append(f"| {label} | {_stat(a)} | {_stat(b)} | {_verdict(a, b)} |")
        lines += ["", "Strict F1 per label (support: gold mentions in this set):", "",
                  "| label | support | bundled-only | full | full − bundled-only |", "|---|---|---|---|---|"]
        first = results[0][eval_set]["per_label"]  # the labels and their support: the same in every run
        for label, block in first.items():
            a = _values(results, "bundled-only", eval_set, "", label)
            b = _values(results, "full", eval_set, "", label)
            lines.append(f"| {label} | {block['support']} | {_stat(a)} | {_stat(b)} | {_verdict(a, b)} |")
        lines.append("")
    variants = data.get("variants", {})
    if variants:
        lines += ["## Trials on the full config", "",
                  "Entity model only (the relation model trains on gold entities, so these leave it alone). "
                  "Validation is the full config's validation split, where such a choice is made; the held-out "
                  "scores are shown beside it as the issue asks.", "",
                  "| trial | overrides | validation F1 | held-out re3d strict F1 | bundled test strict F1 | "
                  "seed article strict F1 |", "|---|---|---|---|---|---|"]
        for name in ["full", *variants]:
            over = ", ".join(variants[name]["overrides"]) if name in variants else "(none)"
            cells = [_stat(_values(results, name, None, "validation_entity_f1"))]
            cells += [_stat(_values(results, name, key, "strict_f1")) for key in EVAL_SETS]
            lines.append(f"| {name} | {over} | " + " | ".join(cells) + " |")
        labels = list(results[0]["re3d_heldout"]["per_label"])
        lines += ["", "Strict F1 per label on the held-out re3d documents:", "",
                  "| trial | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for name in ["full", *variants]:
            lines.append(f"| {name} | " + " | ".join(
                _stat(_values(results, name, "re3d_heldout", "", label)) for label in labels) + " |")
        lines.append("")
    times = {}
    for r in results:
        if r.get("ner_train_seconds"):
            times.setdefault(r["config"], []).append(r["ner_train_seconds"] / 60)
    lines += ["## Cost", "", "Entity-model training, minutes a seed on this machine's 2 CPU cores: " +
              "; ".join(f"{k} {statistics.mean(v):.1f}" for k, v in times.items()) + ".", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--relation-seeds", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--re3d-split", type=float, nargs=3, default=(0.7, 0.1, 0.2), metavar=("TRAIN", "VAL", "HELDOUT"))
    ap.add_argument("--re3d-seed", type=int, default=13)
    ap.add_argument("--work", default="runs/effect", help="run folders")
    ap.add_argument("--out", default="docs/results/re3d-effect.json")
    ap.add_argument("--page", default="docs/re3d-effect.md")
    ap.add_argument("--page-only", action="store_true")
    ap.add_argument("--note", default=None, help="a paragraph kept in the results and put under the page's title")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=BASE:KEY=VALUE",
                    help="a trial: BASE's config and corpus with overrides, entity model only")
    args = ap.parse_args(argv)
    out, page = Path(args.out), Path(args.page)
    if args.page_only:
        data = json.loads(out.read_text())
        if args.note is not None:
            data["note"] = args.note
            out.write_text(json.dumps(data, indent=1) + "\n")
        write_page(data, page)
        return 0

    from conflict_ie.corpus import build_corpus, save_corpus

    corpora, eval_docs, schema = make_splits(tuple(args.re3d_split), args.re3d_seed)
    work = Path(args.work)
    data = json.loads(out.read_text()) if out.exists() else {"results": []}
    if args.note is not None:
        data["note"] = args.note
    digest = annotations_digest()
    if data.setdefault("annotations_digest", digest) != digest:
        raise SystemExit(f"{out} holds results on other annotations (digest {data['annotations_digest']}, now "
                         f"{digest}): give another --out and --work, or remove them")
    for r in data["results"]:  # results written before the validation F1 was recorded
        info = Path(r["run"]) / "training_info.json"
        if r.get("validation_entity_f1") is None and info.exists():
            r["validation_entity_f1"] = json.loads(info.read_text()).get("best_validation_entity_f1")
    data.update({"seeds": args.seeds, "relation_seeds": args.relation_seeds, "re3d_split": list(args.re3d_split),
                 "re3d_seed": args.re3d_seed,
                 "sizes": {**{n: {k: len(v) for k, v in c.items()} for n, c in corpora.items()},
                           **{k: len(v) for k, v in eval_docs.items()}},
                 "heldout_ids": sorted(d.id for d in eval_docs["re3d_heldout"])})
    corpus_dirs = {}
    for name, splits in corpora.items():
        corpus_dirs[name] = work / name / "corpus"
        if not (corpus_dirs[name] / "dataset_dict.json").exists():
            save_corpus(build_corpus(splits, schema), schema, corpus_dirs[name], sources=[str(CONFIGS[name])])
    for seed in args.seeds:
        for name in CONFIGS:
            with_rel = seed in args.relation_seeds
            done = [r for r in data["results"] if r["config"] == name and r["seed"] == seed]
            if done and (done[0]["relations"] or not with_rel):
                continue
            print(f"[effect] {name} seed {seed} (relations: {with_rel})", file=sys.stderr, flush=True)
            result = run_one(name, seed, with_rel, corpus_dirs[name], work, eval_docs)
            data["results"] = [r for r in data["results"] if not (r["config"] == name and r["seed"] == seed)]
            data["results"].append(result)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(data, indent=1) + "\n")
            write_page(data, page)
            print(f"[effect] {name} seed {seed}: re3d strict {result['re3d_heldout']['strict_f1']:.3f}, "
                  f"bundled test {result['bundled_test']['strict_f1']:.3f}", file=sys.stderr, flush=True)
    variants = [parse_variant(v) for v in args.variant]
    data.setdefault("variants", {}).update({n: {"base": b, "overrides": o} for n, b, o in variants})
    for seed in args.seeds:
        for name, base, overrides in variants:
            if any(r["config"] == name and r["seed"] == seed for r in data["results"]):
                continue
            print(f"[effect] {name} seed {seed} ({base} with {overrides})", file=sys.stderr, flush=True)
            result = run_one(name, seed, False, corpus_dirs[base], work, eval_docs, base, overrides)
            data["results"].append(result)
            out.write_text(json.dumps(data, indent=1) + "\n")
            write_page(data, page)
    write_page(data, page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
