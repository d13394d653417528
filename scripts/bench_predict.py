#!/usr/bin/env python
"""Predictor throughput against ``transformers.pipeline`` with stride, same model, same texts, same run.

    python scripts/bench_predict.py [--model runs/demo] [--repeat 3] [--batch-size 16]

Prints articles/s, tokens/s and peak memory (resident set, measured in a fresh
process for each side so that one does not inherit the other's peak) and the
ratio predictor / pipeline, then how many entities differ and of what kind.

Both sides use the model's window (``max_length``) and ``stride`` and the same
batch size; the pipeline without ``stride`` would read only the first window of
each article, which is not a fair baseline. Without --model, the base MiniLM
with a freshly initialised classification head is used (speed does not depend
on what the head learned).
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


def texts() -> list[str]:
    """The bundled articles plus long ones made by joining them (longer than one window)."""
    data = json.loads((ROOT / "annotations" / "conflict-news.json").read_text())
    arts = [t["data"]["text"] for t in data]
    longs = ["\n\n".join(arts[i : i + 6]) for i in range(0, len(arts), 6)]
    return arts + longs


def model_dir(arg: str | None) -> str:
    if arg:
        return arg
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from conflict_ie.config import resolve_base_model
    from conflict_ie.schema import LabelSchema

    schema = LabelSchema.load("conflict")
    base = resolve_base_model("minilm-l6-offline")
    out = Path(tempfile.mkdtemp(prefix="bench-model-"))
    import torch

    torch.manual_seed(0)
    AutoModelForTokenClassification.from_pretrained(base, num_labels=len(schema.bio_tags), id2label=schema.id2label,
                                                    label2id=schema.label2id).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    schema.save(out / "schema.yaml")
    return str(out)


def run_side(side: str, model: str, repeat: int, batch_size: int, out: str) -> None:
    """One side of the benchmark, in its own process."""
    import resource

    import torch

    from conflict_ie.predictor import Predictor

    torch.manual_seed(0)
    docs = texts()
    pred = Predictor.from_pretrained(model, relations=False)
    n_tokens = sum(len(pred.tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in docs)
    if side == "predictor":
        fn = lambda: [[(e.label, e.start, e.end) for e in p.entities]  # noqa: E731
                      for p in pred.predict_batch(docs, batch_size=batch_size)]
    else:
        from transformers import pipeline

        tok = pred.tokenizer
        tok.model_max_length = pred.max_length  # the same window as the predictor
        pipe = pipeline("token-classification", model=pred.model, tokenizer=tok, aggregation_strategy="simple",
                        stride=pred.stride, device="cpu")
        fn = lambda: [[(e["entity_group"], int(e["start"]), int(e["end"])) for e in r]  # noqa: E731
                      for r in pipe(docs, batch_size=batch_size)]
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    best = min(times)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps({"seconds": best, "articles": len(docs), "tokens": n_tokens, "peak_mb": peak_mb,
                                     "entities": result, "threads": torch.get_num_threads(),
                                     "max_length": pred.max_length, "stride": pred.stride}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--side", choices=["predictor", "pipeline"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:
        run_side(args.side, args.model, args.repeat, args.batch_size, args.out)
        return 0
    model = model_dir(args.model)
    results = {}
    for side in ("pipeline", "predictor"):
        out = tempfile.mktemp(suffix=".json")
        subprocess.run([sys.executable, __file__, "--side", side, "--model", model, "--repeat", str(args.repeat),
                        "--batch-size", str(args.batch_size), "--out", out], check=True)
        results[side] = json.loads(Path(out).read_text())
    p, q = results["predictor"], results["pipeline"]
    print(f"model: {model}; {p['articles']} articles, {p['tokens']} tokens; window {p['max_length']}, "
          f"stride {p['stride']}, batch {args.batch_size}, {p['threads']} threads, fp32, best of {args.repeat}")
    print(f"{'':<34} {'articles/s':>11} {'tokens/s':>10} {'peak RSS MB':>12}")
    for name, r in (("transformers.pipeline (stride)", q), ("conflict_ie Predictor", p)):
        print(f"{name:<34} {r['articles'] / r['seconds']:>11.2f} {r['tokens'] / r['seconds']:>10.0f} "
              f"{r['peak_mb']:>12.0f}")
    print(f"ratio predictor / pipeline (throughput): {q['seconds'] / p['seconds']:.2f}x")
    same = differ = 0
    kinds: dict[str, int] = {}
    for a, b in zip(p["entities"], q["entities"]):
        sa, sb = {tuple(x) for x in a}, {tuple(x) for x in b}
        same += len(sa & sb)
        for e in sa ^ sb:
            differ += 1
            other = sb if e in sa else sa
            overlap = [o for o in other if o[1] < e[2] and e[1] < o[2]]
            kind = ("only predictor" if e in sa else "only pipeline") + (
                ", overlaps a different span there" if overlap else ", nothing there")
            kinds[kind] = kinds.get(kind, 0) + 1
    print(f"entities: {same} identical, {differ} differing: {kinds}")
    print("Differences come from word-level decoding: the predictor tags each word by its first sub-token "
          "(as it was trained), the pipeline's 'simple' aggregation tags sub-tokens and can split or merge words.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
