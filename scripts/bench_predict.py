#!/usr/bin/env python
"""Prediction speed and quality, in one run, on the same texts and threads: the plain
``transformers`` pipeline as the baseline, then the Predictor at each precision and backend,
entities only and full (entities + relations + casualty records).

    python scripts/bench_predict.py --model runs/demo [--rounds 2] [--repeat 2]

For every side it prints article tokens/s, the ratio to the baseline, peak resident memory
(each side measured in a fresh process, so that none inherits another's peak), strict micro
F1 of its entities against the gold of the run's test split, and how many of fp32's entities
it reproduces (exact span and label). When ``../shared/data/re3d`` is present, strict F1 is also
computed on the re3d validation documents in the conflict schema (``annotations/re3d-conflict``,
split as ``scripts/effect_re3d.py`` splits them: 0.7/0.1/0.2 by document, seed 13); the demo
model never trained on any re3d document. Without that folder the column says so and stays
empty. The baseline is ``pipeline("token-classification",
aggregation_strategy="first", stride=...)`` at batch 8 with the model's own window, as the
model card tells a user to call it; without ``stride`` the pipeline would read only the first
512 tokens of an article and not be a fair baseline.

The timed texts are the bundled articles (all of them: speed does not depend on whether the
model saw a text) plus longer texts joined from them; F1 is computed on the test split alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
CHOICES = [("torch", "fp32"), ("torch", "bf16"), ("torch", "int8"), ("torch-compile", "fp32"),
           ("torch-compile", "bf16"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")]
BATCH = 8


def texts() -> list[str]:
    """The bundled articles plus long ones made by joining them (longer than one window)."""
    data = json.loads((ROOT / "annotations" / "conflict-news.json").read_text())
    arts = [t["data"]["text"] for t in data]
    return arts + ["\n\n".join(arts[i : i + 6]) for i in range(0, len(arts), 6)]


RE3D_TEXT = ROOT.parent / "shared" / "data" / "re3d"


def gold_sets(model: str) -> dict[str, list]:
    """Documents with gold annotations that F1 is computed on, by name: the run's test split, and
    the re3d validation documents when their text is here (``RE3D_TEXT``)."""
    from conflict_ie.corpus import documents_of, load_corpus

    corpus, schema = load_corpus(Path(model) / "corpus")
    sets = {"test": documents_of(corpus["test"], schema)}
    if RE3D_TEXT.is_dir():
        # The split lives in effect_re3d.py (this folder is on sys.path when a script of it runs), so
        # that "re3d validation" means the same documents on every page that reports it.
        from effect_re3d import split_inputs

        sets["re3d"] = split_inputs()[1]["validation"]
    return sets


def run_side(side: str, model: str, repeat: int, out: str) -> None:
    """One side of the benchmark, in its own process: ``pipeline`` or ``BACKEND/PRECISION/entities|full``."""
    import resource

    import torch

    from conflict_ie.predictor import Predictor

    torch.manual_seed(0)
    docs = texts()
    gold = gold_sets(model)
    t0 = time.perf_counter()
    if side == "pipeline":
        from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

        settings = json.loads((Path(model) / "conflict_ie.json").read_text())
        tok = AutoTokenizer.from_pretrained(model)
        tok.model_max_length = settings["max_length"]
        pipe = pipeline("token-classification", model=AutoModelForTokenClassification.from_pretrained(model),
                        tokenizer=tok, aggregation_strategy="first", stride=settings["stride"], device="cpu")

        def fn(items):
            return [[(e["entity_group"], int(e["start"]), int(e["end"])) for e in r]
                    for r in pipe(items, batch_size=BATCH)]
    else:
        backend, precision, what = side.split("/")
        pred = Predictor.from_pretrained(model, relations=what == "full", precision=precision, backend=backend)

        def fn(items):
            return [[(e.label, e.start, e.end) for e in p.entities]
                    for p in pred.predict_batch(items, batch_size=BATCH, progress=False)]
    # Loading includes what a choice does once per process: torch-compile's compilation, and the
    # ONNX export when it is not cached yet (the first round's; rounds keep their best).
    load_seconds = time.perf_counter() - t0
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    n_tokens = sum(len(tok(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in docs)
    fn(docs[:4])  # warm-up (and, for onnxruntime, the export when it is not cached yet)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(docs)
        times.append(time.perf_counter() - t0)
    gold_pred = {name: fn([d.text for d in ds]) for name, ds in gold.items()}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps({"seconds": min(times), "tokens": n_tokens, "articles": len(docs),
                                     "peak_mb": peak_mb, "gold_pred": gold_pred, "threads": torch.get_num_threads(),
                                     "load_seconds": load_seconds}))


def strict_f1(gold, pred) -> float:
    from conflict_ie.documents import Span
    from conflict_ie.evaluation import strict_scores

    labels = sorted({s.label for d in gold for s in d.spans})
    spans = [[Span(str(i), a, b, label) for i, (label, a, b) in enumerate(doc)] for doc in pred]
    return strict_scores([d.spans for d in gold], spans, labels)["micro"]["f1"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "runs" / "demo"), help="a run folder (default runs/demo)")
    ap.add_argument("--repeat", type=int, default=2, help="timed repetitions inside each process")
    ap.add_argument("--rounds", type=int, default=2, help="fresh processes per side, interleaved")
    ap.add_argument("--choices", nargs="+", default=[f"{b}/{p}" for b, p in CHOICES],
                    help="BACKEND/PRECISION pairs to measure (default: all)")
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:
        run_side(args.side, args.model, args.repeat, args.out)
        return 0
    # The stand-off annotations name their text folder relative to the repository root, and the
    # sides run in their own processes: every path is made absolute and every process runs there.
    args.model = str(Path(args.model).resolve())
    os.chdir(ROOT)
    if not (Path(args.model) / "corpus").is_dir():
        print(f"{args.model} is not a run folder with its corpus (train one with `make demo`)", file=sys.stderr)
        return 2
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        args.choices = [c for c in args.choices if not c.startswith("onnxruntime")]
        print("onnxruntime is not installed (the [onnx] extra): its rows are left out", file=sys.stderr)
    sides = ["pipeline"] + [f"{c}/{w}" for w in ("entities", "full") for c in args.choices]
    # Rounds interleave the sides, so that a slow phase of a shared machine hits all of them alike;
    # each side keeps its best round.
    results: dict[str, dict] = {}
    for _ in range(args.rounds):
        for side in sides:
            out = tempfile.mktemp(suffix=".json")
            subprocess.run([sys.executable, __file__, "--side", side, "--model", args.model, "--repeat",
                            str(args.repeat), "--out", out], check=True)
            r = json.loads(Path(out).read_text())
            if side not in results or r["seconds"] < results[side]["seconds"]:
                results[side] = {**r, "peak_mb": max(r["peak_mb"], results.get(side, {}).get("peak_mb", 0)),
                                 "load_seconds": min(r["load_seconds"],
                                                     results.get(side, {}).get("load_seconds", float("inf")))}
    gold = gold_sets(args.model)
    base = results["pipeline"]
    # The reference of the last column is fp32 entities-only; a run that left it out compares with the baseline.
    ref_side = "torch/fp32/entities" if "torch/fp32/entities" in results else "pipeline"
    ref = {(n, *e) for n, doc in enumerate(results[ref_side]["gold_pred"]["test"]) for e in doc}
    print(f"model {args.model}; {base['articles']} texts, {base['tokens']} article tokens; {base['threads']} threads; "
          f"batch {BATCH}; best of {args.rounds} rounds x {args.repeat}")
    print(f"strict F1 on the {len(gold['test'])} test-split articles (test F1) and "
          + (f"the {len(gold['re3d'])} re3d validation documents in the conflict schema (re3d F1)" if "re3d" in gold
             else f"not on re3d validation: {RE3D_TEXT} is absent"))
    print("= fp32 entities: share of the entities on the test split that a side shares with "
          + ("fp32 entities-only" if ref_side != "pipeline" else "the baseline (fp32 entities-only was not measured)")
          + " (shared / union)")
    print("load s: loading the side's model(s), torch-compile's compilation and a missing ONNX export included "
          "(best of rounds)")
    header = f"| {'side':<38} | {'tokens/s':>8} | {'x pipeline':>10} | {'load s':>6} | {'peak RSS MB':>11} | " \
             f"{'test F1':>7} | {'re3d F1':>7} | {'= fp32 entities':>15} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for side in sides:
        r = results[side]
        mine = {(n, *e) for n, doc in enumerate(r["gold_pred"]["test"]) for e in doc}
        agree = len(ref & mine) / max(len(ref | mine), 1)
        name = "transformers pipeline (baseline)" if side == "pipeline" else side.replace("/", " ")
        f1 = {k: f"{strict_f1(gold[k], r['gold_pred'][k]):.3f}" if k in gold else "-" for k in ("test", "re3d")}
        print(f"| {name:<38} | {r['tokens'] / r['seconds']:>8.0f} | {base['seconds'] / r['seconds']:>9.2f}x | "
              f"{r['load_seconds']:>6.1f} | {r['peak_mb']:>11.0f} | {f1['test']:>7} | {f1['re3d']:>7} | "
              f"{agree:>15.1%} |")
    print("\nfull / entities-only throughput at the same choice:")
    for c in args.choices:
        e, f = results.get(f"{c}/entities"), results.get(f"{c}/full")
        if e and f:
            print(f"  {c:<18} {e['seconds'] / f['seconds']:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
