#!/usr/bin/env python
"""Write the comparison page of two relation designs from ``scripts/compare_relations.py`` results.

    python scripts/relations_page.py BASELINE.json NEW.json --out docs/fast-relations.md

Each JSON holds one design's seeds (same run, same entity model, same splits). The page gives
per split the mean, standard deviation and the seeds' values of relation F1 on gold entities,
end to end and casualty-type accuracy, and the mean training time; a difference is called
"within seed noise" when it is smaller than the larger of the two standard deviations, and is
given no verdict when either side has a single seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KEYS = (("gold_f1", "relations, gold entities (F1)"), ("e2e_f1", "relations, end to end (F1)"),
        ("casualty_type_accuracy", "casualty-type accuracy"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("baseline")
    ap.add_argument("new")
    ap.add_argument("--out", required=True)
    ap.add_argument("--intro", default="", help="a paragraph to put under the title")
    ap.add_argument("--title", default="Relations in one pass: the comparison")
    args = ap.parse_args(argv)
    old, new = (json.loads(Path(p).read_text()) for p in (args.baseline, args.new))
    splits = sorted({k.split(".")[0] for k in new["summary"] if "." in k}, key=lambda s: s != "test")
    lines = [f"# {args.title}", "", args.intro, "" if args.intro else "",
             f"Baseline: **{old['label']}**; new: **{new['label']}**. Run `{new['run']}` (its corpus and entity "
             f"model), seeds {', '.join(map(str, new['seeds']))}; only the relation model is trained again "
             "(`scripts/compare_relations.py`). Mean ± standard deviation over the seeds, the seeds' values "
             "in brackets.", ""]
    for split in splits:
        lines += [f"## {split} split", "", "| | baseline | new | difference |", "|---|---|---|---|"]
        for key, name in KEYS:
            a, b = old["summary"].get(f"{split}.{key}"), new["summary"].get(f"{split}.{key}")
            if not a or not b:
                continue
            diff = b["mean"] - a["mean"]
            noise = max(a["sd"], b["sd"])
            if min(len(a["values"]), len(b["values"])) < 2:
                # One seed has no spread to compare against: say so rather than call it better or worse.
                verdict = "one seed: noise not measured"
            else:
                verdict = "within seed noise" if abs(diff) <= noise else ("better" if diff > 0 else "worse")
            lines.append(f"| {name} | {a['mean']:.3f} ± {a['sd']:.3f} ({', '.join(f'{v:.3f}' for v in a['values'])}) "
                         f"| {b['mean']:.3f} ± {b['sd']:.3f} ({', '.join(f'{v:.3f}' for v in b['values'])}) "
                         f"| {diff:+.3f} ({verdict}) |")
        lines.append("")
    lines += ["## Training", "",
              f"Mean training time per seed: baseline {old['summary']['train_seconds_mean'] / 60:.1f} min, "
              f"new {new['summary']['train_seconds_mean'] / 60:.1f} min (the overrides of each: "
              f"{old['overrides'] or 'none'} / {new['overrides'] or 'none'}).", ""]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
