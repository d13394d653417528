"""The relation step's time at inference packing against training's packing, in one run.

The relation model reads a window's candidate pairs as levitated markers, at most some number of
pairs a pass; a window with more pairs is read again, text and all. No score depends on the
packing (a pair's markers see only the text and each other), so inference packs more pairs a pass
(``relation_inference.INFERENCE_MAX_PAIRS``) than training does (``relations.max_pairs``). This
script times the relation step alone on ``bench_predict``'s texts, with the entities the run's
entity model finds there, at each packing (rounds interleaved, best of them), checks that both
find the same relations, and prints the time of each and the ratio to the baseline:

    python scripts/bench_relation_packing.py --model runs/demo --rounds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    import torch

    from bench_predict import texts
    from conflict_ie.documents import Span
    from conflict_ie.predictor import Predictor
    from conflict_ie.relation_data import CandidateStats
    from conflict_ie.relation_inference import INFERENCE_MAX_PAIRS, RelationExtractor

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/demo", help="a run folder")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    pred = Predictor.from_pretrained(args.model, relations=True, precision=args.precision)
    shipped, pred.relation_model = pred.relation_model, None  # entities only, then the relation step alone
    docs = texts()
    items = [(p.text, [Span(e.id, e.start, e.end, e.label) for e in p.entities])
             for p in pred.predict_batch(docs, batch_size=args.batch_size, progress=False)]
    trained = shipped.model.config.max_pairs
    sides = {f"training's packing ({trained} pairs a pass, baseline)": trained,
             f"inference packing ({INFERENCE_MAX_PAIRS} pairs a pass)": INFERENCE_MAX_PAIRS}
    extractors = {name: RelationExtractor(shipped.model, shipped.encoder.tokenizer, shipped.schema,
                                          threshold=shipped.threshold, precision=args.precision, max_pairs=n)
                  for name, n in sides.items()}
    best, found, tokens = {name: float("inf") for name in sides}, {}, {}
    extractors[next(iter(sides))].classify_many(items[:4], args.batch_size)  # warm-up
    for _ in range(args.rounds):
        for name, rx in extractors.items():
            stats = CandidateStats()
            t0 = time.perf_counter()
            out = rx.classify_many(items, args.batch_size, stats)
            best[name] = min(best[name], time.perf_counter() - t0)
            tokens[name] = stats.window_tokens
            found[name] = {(n, h.id, t.id, label) for n, (rels, _) in enumerate(out) for h, t, label, _ in rels}
    base = next(iter(sides))
    tok = shipped.encoder.tokenizer
    article_tokens = sum(len(tok(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in docs)
    print(f"model {args.model}; {len(docs)} texts, {article_tokens} article tokens, "
          f"{sum(len(s) for _, s in items)} entities; {torch.get_num_threads()} threads; {args.precision}; "
          f"best of {args.rounds} rounds; tokens read: text and markers, as a multiple of the article tokens")
    for name in sides:
        print(f"  {name:48s} {best[name]:7.2f} s  {best[base] / best[name]:5.2f}x  "
              f"tokens read {tokens[name] / article_tokens:4.2f}x  "
              f"{len(found[name])} relations, {'the same' if found[name] == found[base] else 'NOT the same'}")
    return 0 if all(f == found[base] for f in found.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
