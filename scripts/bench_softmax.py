#!/usr/bin/env python
"""Entity prediction with its probabilities computed by numpy (as shipped) against ``torch.softmax``
(the baseline: how the Predictor computed them before), in one process, rounds interleaved.

    python scripts/bench_softmax.py --model runs/demo [--rounds 5] [--choices onnxruntime/int8 torch/int8]

Why this is measured at all: after an ONNX Runtime pass its worker threads spin for a while,
and a torch op that wakes torch's own OpenMP threads then competes with them for a 2-core
CPU (``conflict_ie.runtime.softmax``). For each backend/precision one Predictor is loaded, and
its entity pass over ``bench_predict``'s 52 texts alternates between the two ways; each keeps
its best round. The entities must be the same both ways (the script fails otherwise): only
the time may differ.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def torch_softmax(logits):
    """The baseline: the probabilities as the Predictor computed them before numpy did."""
    import torch

    return torch.softmax(logits.float(), dim=-1).cpu().numpy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "runs" / "demo"), help="a run folder (default runs/demo)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds of each way, interleaved")
    ap.add_argument("--choices", nargs="+", default=["onnxruntime/int8", "onnxruntime/fp32", "torch/int8",
                                                     "torch/fp32"], help="BACKEND/PRECISION pairs")
    args = ap.parse_args(argv)
    from bench_predict import BATCH, texts

    from conflict_ie import predictor as predictor_module
    from conflict_ie.predictor import Predictor
    from conflict_ie.runtime import softmax as numpy_softmax

    docs = texts()
    ways = {"torch.softmax (baseline)": torch_softmax, "numpy (shipped)": numpy_softmax}
    print(f"model {args.model}; {len(docs)} texts; batch {BATCH}; best of {args.rounds} interleaved rounds")
    print(f"| {'backend/precision':<18} | {'torch.softmax s':>15} | {'numpy s':>7} | {'speed-up':>8} |")
    print(f"|{'-' * 20}|{'-' * 17}|{'-' * 9}|{'-' * 10}|")
    for choice in args.choices:
        backend, precision = choice.split("/")
        pred = Predictor.from_pretrained(args.model, relations=False, precision=precision, backend=backend)
        best: dict[str, float] = {}
        found: dict[str, list] = {}
        try:
            for _ in range(args.rounds + 1):  # the first round of each way warms up and is not timed
                for name, fn in ways.items():
                    predictor_module.softmax = fn
                    t0 = time.perf_counter()
                    out = pred.predict_batch(docs, batch_size=BATCH, progress=False)
                    seconds = time.perf_counter() - t0
                    if name in found:
                        best[name] = min(best.get(name, float("inf")), seconds)
                    found[name] = [[(e.label, e.start, e.end) for e in p.entities] for p in out]
        finally:
            predictor_module.softmax = numpy_softmax
        if len({repr(v) for v in found.values()}) != 1:
            print(f"{choice}: the two ways decoded different entities", file=sys.stderr)
            return 1
        base, new = best["torch.softmax (baseline)"], best["numpy (shipped)"]
        print(f"| {choice:<18} | {base:>15.3f} | {new:>7.3f} | {base / new:>7.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
