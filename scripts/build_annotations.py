#!/usr/bin/env python
"""Build the bundled Label Studio exports from the hand-written markup in annotations/src/.

    python scripts/build_annotations.py              # writes annotations/conflict-news.json and seed-article.json
    python scripts/build_annotations.py --check annotations/src/batch-a.txt   # lint one file, write nothing

The markup (see conflict_ie/markup.py) is the source people edit; the JSON files
are what Label Studio would export, and they are read back with the package's
own strict reader before they are written, so a mistake fails here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

from conflict_ie.labelstudio import documents_to_tasks, read_labelstudio
from conflict_ie.markup import read_markup_file
from conflict_ie.schema import LabelSchema

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "annotations" / "src"
SEED_SRC = SRC / "seed-article.txt"
# Trailing characters a span may not end with, leading ones it may not start with (guidelines).
_BAD_EDGE = set(" \t\n,;:!?\"'()“”‘’")


def lint(articles, *, word_range=(150, 500)) -> list[str]:
    """Guideline checks the reader cannot know about: span edges, lengths, origin, casualty types."""
    out = []
    for art in articles:
        doc = art.document
        words = len(doc.text.split())
        if word_range and not (word_range[0] <= words <= word_range[1]):
            out.append(f"{art.id}: {words} words; articles are {word_range[0]}-{word_range[1]} words")
        for s in doc.spans:
            t = doc.text[s.start : s.end]
            if t[0] in _BAD_EDGE or t[-1] in _BAD_EDGE or (t.endswith(".") and t.count(".") == 1):
                out.append(f"{art.id}: span {t!r} ({s.label}) starts or ends with white space or punctuation")
        if word_range and art.header.get("origin") != "written-for-project":
            out.append(f"{art.id}: header needs 'origin: written-for-project'")
    return out


def sentence_frames(articles) -> list[str]:
    """Flag sentences of different articles that open with the same five words (a shared frame)."""
    seen: dict[tuple[str, ...], str] = {}
    out = []
    for art in articles:
        for sent in re.split(r"(?<=[.!?])\s+", art.document.text):
            key = tuple(w.lower() for w in re.findall(r"[A-Za-z]+", sent)[:5])
            if len(key) < 5:
                continue
            if key in seen and seen[key] != art.id:
                out.append(f"{art.id}: sentence opens like one in {seen[key]}: {' '.join(key)!r}")
            seen.setdefault(key, art.id)
    return out


def to_export(articles, schema: LabelSchema, first_id: int = 1) -> list[dict]:
    tasks = documents_to_tasks(
        [a.document for a in articles],
        annotator={"id": 1, "email": "annotator@conflict-ie.example", "first_name": "", "last_name": ""},
        first_id=first_id,
    )
    for task, art in zip(tasks, articles):
        task["meta"]["article_id"] = art.id
    # The package's own strict reader must accept what we ship.
    read_labelstudio(tasks, schema)
    return tasks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", nargs="*", help="lint these markup files only; write nothing")
    ap.add_argument("--schema", default="conflict")
    args = ap.parse_args(argv)
    schema = LabelSchema.load(args.schema)
    if args.check is not None:
        articles = [a for f in args.check for a in read_markup_file(f, schema)]
        problems = lint(articles) + sentence_frames(articles)
        to_export(articles, schema)
        _print_stats(articles)
        for p in problems:
            print("problem:", p)
        return 1 if problems else 0

    files = sorted(p for p in SRC.glob("*.txt") if p != SEED_SRC)
    articles = [a for f in files for a in read_markup_file(f, schema)]
    ids = Counter(a.id for a in articles)
    problems = [f"duplicate article id {k}" for k, v in ids.items() if v > 1]
    problems += lint(articles) + sentence_frames(articles)
    for p in problems:
        print("problem:", p, file=sys.stderr)
    if problems:
        return 1
    export = to_export(articles, schema)
    (ROOT / "annotations" / "conflict-news.json").write_text(json.dumps(export, indent=1, ensure_ascii=False) + "\n")
    _print_stats(articles)
    if SEED_SRC.exists():
        seed = read_markup_file(SEED_SRC, schema)
        problems = lint(seed, word_range=None)
        for p in problems:
            print("problem (seed):", p, file=sys.stderr)
        if problems:
            return 1
        seed_export = to_export(seed, schema, first_id=1000)
        (ROOT / "annotations" / "seed-article.json").write_text(
            json.dumps(seed_export, indent=1, ensure_ascii=False) + "\n"
        )
        _print_stats(seed)
    return 0


def _print_stats(articles) -> None:
    labels = Counter(s.label for a in articles for s in a.document.spans)
    rels = Counter(r.label for a in articles for r in a.document.relations)
    types = Counter(s.attributes.get("casualty_type") for a in articles for s in a.document.spans
                    if s.label == "CASUALTY_FIGURE")
    words = sum(len(a.document.text.split()) for a in articles)
    print(f"{len(articles)} articles, {words} words; spans {dict(labels)}; relations {dict(rels)}; "
          f"casualty types {dict(types)}")


if __name__ == "__main__":
    sys.exit(main())
