"""Annotate re3d documents in the conflict schema, by surface text, into stand-off files.

An annotator (a person or a helper session) reads a document, writes a draft that names each
mention by its surface text and occurrence, and lets this tool find the offsets, check them
against the schema and write the stand-off file (offsets and hashes only, never the text; see
``conflict_ie.standoff``). Drafts hold surface text, so they stay outside the repository.

    python benchmarks/re3d/conflict_annotate.py list
    python benchmarks/re3d/conflict_annotate.py show DOC_ID        # text with offsets, re3d candidates
    python benchmarks/re3d/conflict_annotate.py find DOC_ID "Daesh"
    python benchmarks/re3d/conflict_annotate.py write DRAFT.yaml --out annotations/re3d-conflict --annotator A

A draft::

    id: 2b9d6d0f...
    entities:
      - {id: e1, label: ARMED_GROUP, text: "ISIL"}              # first occurrence
      - {id: e2, label: ARMED_GROUP, text: "ISIL", nth: 3}      # third occurrence in the document
      - {id: e3, label: CASUALTY_FIGURE, text: "12 fighters", casualty_type: killed}
      - {id: e4, label: LOCATION, text: "Mosul", start: 812}    # or the start offset itself
    relations:
      - [e3, PERPETRATOR, e1]
    notes:
      - "why a hard mention was decided as it was"
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

import yaml

from conflict_ie.documents import Document, Relation, Span
from conflict_ie.errors import ConflictIEError, InputError
from conflict_ie.schema import LabelSchema
from conflict_ie.documents import find_overlaps
from conflict_ie.standoff import FORMAT, MANIFEST, read_re3d_texts, read_standoff_file, standoff_record

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "re3d"
CANDIDATE_TYPES = ("Organisation", "Person", "Location", "Quantity", "Weapon", "MilitaryPlatform", "Vehicle")


def _candidates(root: Path, doc_id: str) -> list[dict]:
    """re3d's own entities of the document, of the types that may map to conflict labels."""
    out = []
    for path in sorted(root.glob("*/entities.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("documentId") == doc_id and row.get("type") in CANDIDATE_TYPES:
                out.append(row)
    return sorted(out, key=lambda r: (r["begin"], r["end"]))


def _occurrences(text: str, surface: str) -> list[int]:
    starts, at = [], text.find(surface)
    while at >= 0:
        starts.append(at)
        at = text.find(surface, at + 1)
    return starts


def resolve_draft(draft: dict, text: str, schema: LabelSchema) -> Document:
    """The draft's mentions as spans with offsets; an error names the entity that does not resolve."""
    spans = []
    attr_names = {a.name for a in schema.attributes}
    for n, ent in enumerate(draft.get("entities") or ()):
        ent = dict(ent)
        where = f"entities[{n}] ({ent.get('id')})"
        unknown = set(ent) - {"id", "label", "text", "nth", "start"} - attr_names
        if unknown:
            raise InputError(f"{where}: unknown key(s) {sorted(unknown)}")
        surface = str(ent["text"])
        if "start" in ent:
            start = int(ent["start"])
            if text[start:start + len(surface)] != surface:
                raise InputError(f"{where}: the text at {start} is {text[start:start + len(surface)]!r}, "
                                 f"not {surface!r}")
        else:
            found = _occurrences(text, surface)
            nth = int(ent.get("nth", 1))
            if not 1 <= nth <= len(found):
                raise InputError(f"{where}: {surface!r} occurs {len(found)} time(s), not {nth}")
            start = found[nth - 1]
        attrs = {k: str(v) for k, v in ent.items() if k in attr_names}
        spans.append(Span(str(ent["id"]), start, start + len(surface), str(ent["label"]), attrs))
    for a, b in find_overlaps(spans):
        raise InputError(f"{a.id} {_context(text, a.start, a.end)} overlaps {b.id} "
                         f"{_context(text, b.start, b.end)}: the schema's spans are flat")
    relations = []
    for n, row in enumerate(draft.get("relations") or ()):
        if not (isinstance(row, (list, tuple)) and len(row) == 3):
            raise InputError(f"relations[{n}]: give [head id, LABEL, tail id], not {row!r}")
        relations.append(Relation(str(row[0]), str(row[2]), str(row[1])))
    return Document(str(draft["id"]), text, tuple(spans), tuple(relations))


def _context(text: str, start: int, end: int, width: int = 30) -> str:
    left = text[max(0, start - width):start].replace("\n", " ")
    right = text[end:end + width].replace("\n", " ")
    return f"...{left}[{text[start:end]}]{right}..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--re3d", default=str(DEFAULT_ROOT), help="the re3d copy (default: ../shared/data/re3d)")
    parser.add_argument("--schema", default="conflict")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    show = sub.add_parser("show")
    show.add_argument("doc_id")
    find = sub.add_parser("find")
    find.add_argument("doc_id")
    find.add_argument("surface")
    write = sub.add_parser("write")
    write.add_argument("draft")
    write.add_argument("--out", required=True, help="the stand-off folder")
    write.add_argument("--annotator", required=True)
    args = parser.parse_args(argv)
    root = Path(args.re3d)
    texts = read_re3d_texts(root)
    schema = LabelSchema.load(args.schema)
    try:
        if args.cmd == "list":
            for doc_id, row in sorted(texts.items(), key=lambda kv: (kv[1]["part"], kv[0])):
                print(f"{row['part']:20s} {doc_id}  {len(row['text'].split()):5d} words  {row['title'][:60]}")
        elif args.cmd == "show":
            row = texts[args.doc_id]
            text = row["text"]
            print(f"# {row['title']} ({row['part']}, {len(text)} characters)\n")
            at = 0
            for para in text.split("\n"):
                for line in textwrap.wrap(para, 100, drop_whitespace=False, replace_whitespace=False) or [""]:
                    print(f"{at:6d} | {line}")
                    at += len(line)
                at += 1
            print("\n# re3d candidates (its own schema; decide each against the guidelines)")
            for c in _candidates(root, args.doc_id):
                print(f"{c['begin']:6d}-{c['end']:<6d} {c['type']:16s} {text[c['begin']:c['end']]!r}")
        elif args.cmd == "find":
            text = texts[args.doc_id]["text"]
            for n, start in enumerate(_occurrences(text, args.surface), 1):
                print(f"nth {n}: start {start}  {_context(text, start, start + len(args.surface))}")
        elif args.cmd == "write":
            draft = yaml.safe_load(Path(args.draft).read_text(encoding="utf-8"))
            row = texts[str(draft["id"])]
            doc = resolve_draft(draft, row["text"], schema)
            record = standoff_record(doc, row["part"], args.annotator)
            out = Path(args.out)
            if not (out / MANIFEST).exists():
                out.mkdir(parents=True, exist_ok=True)
                (out / MANIFEST).write_text(json.dumps(
                    {"format": FORMAT, "schema": args.schema, "text_root": "../shared/data/re3d",
                     "corpus": "re3d (https://github.com/dstl/re3d)"}, indent=2) + "\n", encoding="utf-8")
            path = out / row["part"] / f"{doc.id}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            # Read back through the package's reader: the schema, the hashes and the relations are checked.
            back = read_standoff_file(path, texts, schema)
            for s in sorted(back.spans, key=lambda s: s.start):
                attrs = "".join(f" {k}={v}" for k, v in s.attributes.items())
                print(f"{s.id:5s} {s.label:16s}{attrs:22s} {_context(back.text, s.start, s.end)}")
            for r in back.relations:
                print(f"{r.head} -{r.label}-> {r.tail}")
            print(f"wrote {path}: {len(back.spans)} spans, {len(back.relations)} relations")
    except (ConflictIEError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
