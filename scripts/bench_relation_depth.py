"""The full Predictor's speed against entities only, at each depth and marker layout of the relation
encoder, in one run.

``relations.encoder_layers`` trains the relation model on the first N layers of its base encoder;
``relations.markers: start`` gives each span one levitated marker instead of two. A layer or a
marker costs the same whatever the weights, so this script does not train anything: it loads a
run's full Predictor and, for each marker layout and each N asked for, packs the markers that way
and keeps the first N layers of its relation encoder, and times ``predict_batch`` on
``bench_predict``'s texts against ``Predictor.ner`` on the same texts and threads (rounds
interleaved, each side's best). The relations found by a model cut or packed unlike its training
are meaningless; only the times are read. What such a model scores is measured by training it
(``scripts/compare_relations.py --set relations.encoder_layers=N --set relations.markers=start``;
``docs/relation-encoder-depth.md``, ``docs/relation-start-markers.md``).

    python scripts/bench_relation_depth.py --model runs/demo --layers 6 4 3 2 --markers start_end start --rounds 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    import torch

    from bench_predict import BATCH, texts
    from conflict_ie.predictor import Predictor
    from conflict_ie.relation_data import SPAN_MARKERS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/demo", help="a run folder with a relation model")
    ap.add_argument("--layers", type=int, nargs="+", default=[6, 4, 3, 2],
                    help="relation encoder depths to time (at most the run's own)")
    ap.add_argument("--markers", nargs="+", default=["start_end"], choices=SPAN_MARKERS,
                    help="marker layouts to time (the run's own is start_end unless it was trained with start)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    docs = texts()
    pred = Predictor.from_pretrained(args.model)
    if pred.relation_model is None:
        print(f"{args.model} has no relation model", file=sys.stderr)
        return 2
    extractor = pred.relation_model
    packing = extractor.encoder
    encoder = extractor.model.encoder.encoder
    own = list(encoder.layer)
    if max(args.layers) > len(own):
        print(f"the run's relation encoder has {len(own)} layers; asked for {max(args.layers)}", file=sys.stderr)
        return 2
    n_tokens = sum(len(pred.tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in docs)

    def entities():
        pred.ner(docs, batch_size=BATCH)

    def full(k, markers):
        def run():
            # The torch runner calls the module itself, so cutting its layer list cuts the pass.
            encoder.layer = torch.nn.ModuleList(own[:k])
            extractor.encoder = replace(packing, markers=markers)
            pred.predict_batch(docs, batch_size=BATCH, progress=False)
        return run

    sides = {"entities only": entities}
    for markers in args.markers:
        suffix = "" if markers == "start_end" else ", start markers"
        sides.update({f"full, relation encoder {k} layers{suffix}": full(k, markers) for k in args.layers})
    best: dict[str, float] = {}
    entities()  # warm-up
    for _ in range(args.rounds):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    encoder.layer = torch.nn.ModuleList(own)
    extractor.encoder = packing
    print(f"{args.model}: {len(docs)} texts, {n_tokens} article tokens, torch {pred.precision}, "
          f"{torch.get_num_threads()} threads, batch {BATCH}, best of {args.rounds} rounds; "
          f"baseline: entities only")
    base = best["entities only"]
    for name, s in best.items():
        print(f"| {name:49s} | {s:6.2f} s | {n_tokens / s:6.0f} tokens/s | {base / s:4.0%} of entities-only |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
