#!/usr/bin/env python
"""Is uncertainty sampling worth it? A simulated annotation loop on the bundled corpus.

    python scripts/simulate_active_learning.py                       # the full protocol (hours on 2 CPU cores)
    python scripts/simulate_active_learning.py --seeds 0 --rounds 2  # what fits in less time
    python scripts/simulate_active_learning.py --plot-only           # redraw from the results file

Protocol: the annotations in annotations/conflict-news.json are the "annotators". A fixed
test split (``--test`` articles, chosen once with ``--split-seed``) is held out; the rest is
the pool. Each seed draws ``--initial`` articles from the pool as the first annotated set.
Every strategy (random, least-confidence, entropy, margin) then repeats: train the entity
model on the annotated set, score strict micro entity F1 on the test split, and "annotate"
``--step`` more articles of the pool: the least confident under the strategy
(:mod:`conflict_ie.active_learning`), or random ones. The first model of a seed is shared
by the strategies (they start from the same set).

Training is the project's own (``conflict_ie.run.train``) with the demo config made cheap:
entities only (``relations.enabled=false``), ``ner.epochs`` from ``--epochs``, no
validation split (the schedule is fixed, nothing is selected). Results are appended to
``--out``/results.jsonl as each training ends, so an interrupted run resumes where it
stopped (the last model of each curve is kept in ``--work-dir`` to pick the next articles).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("random", "least-confidence", "entropy", "margin")
CHEAP = ["relations.enabled=false", "ner.logging_steps=1000"]


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", default=str(ROOT / "annotations/conflict-news.json"))
    ap.add_argument("--config", default=str(ROOT / "configs/train/conflict-minilm.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--initial", type=int, default=10, help="articles annotated before the first model")
    ap.add_argument("--step", type=int, default=5, help="articles added per round")
    ap.add_argument("--rounds", type=int, default=4, help="rounds of adding articles after the first model")
    ap.add_argument("--test", type=int, default=12, help="held-out test articles (fixed across seeds)")
    ap.add_argument("--split-seed", type=int, default=13)
    ap.add_argument("--epochs", type=float, default=8.0, help="ner.epochs of every training")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more config overrides")
    ap.add_argument("--out", default=str(ROOT / "docs/active-learning"), help="results.jsonl and the plot")
    ap.add_argument("--work-dir", default=str(ROOT / ".cache/active-learning"), help="models and corpora")
    ap.add_argument("--plot-only", action="store_true")
    ap.add_argument("--max-hours", type=float, default=None, help="stop (resumably) after this long")
    return ap.parse_args(argv)


def load_done(path: Path) -> dict[tuple, dict]:
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[(r["seed"], r["strategy"], r["round"])] = r
    return done


def train_and_score(docs_train, test_docs, schema, config, work: Path) -> tuple[float, Path, float]:
    """Train on ``docs_train``; returns (test strict micro entity F1, run folder, seconds)."""
    from conflict_ie.corpus import build_corpus, save_corpus
    from conflict_ie.run import train

    t0 = time.time()
    shutil.rmtree(work, ignore_errors=True)
    corpus_dir = work / "corpus"
    save_corpus(build_corpus({"train": docs_train, "validation": [], "test": test_docs}, schema), schema, corpus_dir)
    run = train(config, corpus_dir=corpus_dir, output_dir=work / "run")
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    metrics = json.loads((run / "metrics.json").read_text())
    return float(metrics["ner"]["strict"]["micro"]["f1"]), run, time.time() - t0


def pick(strategy: str, run: Path, pool: list, k: int, rng: random.Random) -> list:
    """The ``k`` pool documents to annotate next."""
    if strategy == "random":
        return rng.sample(pool, min(k, len(pool)))
    from conflict_ie.active_learning import confidences, rank_by_uncertainty
    from conflict_ie.predictor import Predictor

    predictor = Predictor.from_pretrained(run, progress=False)
    scores = confidences(predictor, [d.text for d in pool], strategy)
    return rank_by_uncertainty(pool, scores)[:k]


def simulate(args) -> None:
    from conflict_ie.config import TrainConfig
    from conflict_ie.labelstudio import read_labelstudio
    from conflict_ie.schema import LabelSchema

    os.chdir(ROOT)
    out, work = Path(args.out), Path(args.work_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    done = load_done(results_path)
    started = time.time()
    schema = LabelSchema.load("conflict")
    docs = sorted(read_labelstudio(args.export, schema).documents, key=lambda d: d.id)
    random.Random(args.split_seed).shuffle(docs)
    test_docs, pool_all = docs[: args.test], docs[args.test :]
    need = args.initial + args.rounds * args.step
    if need > len(pool_all):
        raise SystemExit(f"{need} articles needed but the pool has {len(pool_all)}; lower --rounds or --test")
    by_id = {d.id: d for d in pool_all}
    overrides = CHEAP + [f"ner.epochs={args.epochs}", *args.set]
    print(f"{len(test_docs)} test articles, pool {len(pool_all)}; overrides: {' '.join(overrides)}", flush=True)

    picks_path = out / "picks.jsonl"
    picks = {}
    if picks_path.exists():
        for line in picks_path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                picks[(r["seed"], r["strategy"], r["round"])] = r["labeled"]
    for seed in args.seeds:
        config = TrainConfig.load(args.config, overrides + [f"seed={seed}"])
        initial = random.Random(seed).sample(sorted(by_id), args.initial)
        # Round by round across the strategies: a run stopped early still compares all of them.
        for rnd in range(args.rounds + 1):
            for strategy in args.strategies:
                if args.max_hours and time.time() - started > args.max_hours * 3600:
                    print("time limit reached; run again to resume", flush=True)
                    return
                labeled = list(initial) if rnd == 0 else picks[(seed, strategy, rnd)]
                key = (seed, "*" if rnd == 0 else strategy, rnd)  # round 0: one model for all strategies
                wdir = work / f"seed{seed}" / (strategy if rnd else "initial") / f"round{rnd}"
                if key not in done:
                    f1, run, seconds = train_and_score([by_id[i] for i in labeled], test_docs, schema, config, wdir)
                    rec = {"seed": seed, "strategy": key[1], "round": rnd, "articles": len(labeled),
                           "test_entity_f1": f1, "seconds": round(seconds, 1), "labeled": labeled, "run": str(run),
                           "overrides": overrides + [f"seed={seed}"]}
                    with open(results_path, "a") as f:
                        f.write(json.dumps(rec) + "\n")
                    done[key] = rec
                    print(f"seed {seed} {key[1]:16s} round {rnd}: {len(labeled)} articles, test F1 {f1:.3f} "
                          f"({seconds:.0f} s)", flush=True)
                run = Path(done[key]["run"])
                if rnd < args.rounds and (seed, strategy, rnd + 1) not in picks:
                    if strategy != "random" and not (run / "config.json").exists():
                        print(f"the model of {key} is gone; training it again to pick the next articles", flush=True)
                        train_and_score([by_id[i] for i in labeled], test_docs, schema, config, wdir)
                    rest = [by_id[i] for i in sorted(by_id) if i not in set(labeled)]
                    chosen = pick(strategy, run, rest, args.step, random.Random(f"{seed}-{strategy}-{rnd}"))
                    picks[(seed, strategy, rnd + 1)] = labeled + [d.id for d in chosen]
                    with open(picks_path, "a") as f:
                        f.write(json.dumps({"seed": seed, "strategy": strategy, "round": rnd + 1,
                                            "labeled": picks[(seed, strategy, rnd + 1)]}) + "\n")
                if rnd >= 1:
                    shutil.rmtree(wdir, ignore_errors=True)  # its pick is recorded: one model per curve on disk
        shutil.rmtree(work / f"seed{seed}", ignore_errors=True)


def curves(results_path: Path) -> dict[str, dict[int, list[float]]]:
    """strategy -> articles -> test F1 per seed (round 0 counts for every strategy)."""
    recs = list(load_done(results_path).values())
    strategies = sorted({r["strategy"] for r in recs if r["strategy"] != "*"}, key=STRATEGIES.index)
    out: dict[str, dict[int, list[float]]] = {s: {} for s in strategies}
    for r in recs:
        for s in strategies if r["strategy"] == "*" else [r["strategy"]]:
            out[s].setdefault(r["articles"], []).append(r["test_entity_f1"])
    return out


def plot(results_path: Path, png: Path) -> str:
    """Draw test F1 against articles annotated (mean over seeds, min-max band); returns a table."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = curves(results_path)
    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = {"random": "#7f7f7f", "least-confidence": "#d62728", "entropy": "#1f77b4", "margin": "#2ca02c"}
    rows = ["| strategy | " + " | ".join(f"{n} articles" for n in sorted({n for c in data.values() for n in c}))
            + " |"]
    rows.append("|---" * (1 + len(sorted({n for c in data.values() for n in c}))) + "|")
    for strategy, points in data.items():
        xs = sorted(points)
        means = [sum(points[x]) / len(points[x]) for x in xs]
        ax.plot(xs, means, marker="o", label=strategy, color=colours.get(strategy),
                linestyle="--" if strategy == "random" else "-")
        ax.fill_between(xs, [min(points[x]) for x in xs], [max(points[x]) for x in xs], alpha=0.12,
                        color=colours.get(strategy))
        rows.append(f"| {strategy} | " + " | ".join(f"{m:.3f} (n={len(points[x])})" for x, m in zip(xs, means)) + " |")
    ax.set_xlabel("articles annotated")
    ax.set_ylabel("test entity F1 (strict, micro)")
    seeds = sorted({r["seed"] for r in load_done(results_path).values()})
    ax.set_title(f"Uncertainty sampling vs random (mean of seeds {seeds}; band: min-max)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    return "\n".join(rows)


def annotated_entities(results_path: Path, export: str) -> str:
    """A table of the gold entities in each strategy's annotated set (what the annotators had to mark)."""
    from conflict_ie.labelstudio import read_labelstudio
    from conflict_ie.schema import LabelSchema

    spans = {d.id: len(d.spans) for d in read_labelstudio(export, LabelSchema.load("conflict")).documents}
    recs = list(load_done(results_path).values())
    strategies = sorted({r["strategy"] for r in recs if r["strategy"] != "*"}, key=STRATEGIES.index)
    sizes = sorted({r["articles"] for r in recs})
    table: dict[str, dict[int, list[int]]] = {s: {} for s in strategies}
    for r in recs:
        for s in strategies if r["strategy"] == "*" else [r["strategy"]]:
            table[s].setdefault(r["articles"], []).append(sum(spans[i] for i in r["labeled"]))
    rows = ["| entities annotated | " + " | ".join(f"{n} articles" for n in sizes) + " |",
            "|---" * (1 + len(sizes)) + "|"]
    for s, points in table.items():
        rows.append(f"| {s} | " + " | ".join(f"{sum(points[n]) / len(points[n]):.0f}" if n in points else "–"
                                             for n in sizes) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    args = parse(argv)
    sys.path.insert(0, str(ROOT / "src"))
    if not args.plot_only:
        simulate(args)
    results = Path(args.out) / "results.jsonl"
    if not results.exists():
        print(f"no results yet in {results}")
        return 1
    print(plot(results, Path(args.out) / "active-learning.png"))
    print(annotated_entities(results, args.export))
    print(f"plot: {Path(args.out) / 'active-learning.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
