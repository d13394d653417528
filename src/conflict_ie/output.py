"""Writing predictions for people and programs: a table, JSON, JSONL, Label Studio tasks, casualty rows."""

from __future__ import annotations

import csv
import json
from typing import IO, Sequence

#: The formats :func:`write_predictions` writes (the CLI's ``predict --format`` choices).
FORMATS = ("table", "json", "jsonl", "labelstudio", "casualties")

#: The columns of the ``casualties`` CSV, in order.
CASUALTY_FIELDS = ("file", "text", "start", "end", "count_min", "count_max", "approximate", "casualty_type",
                   "location", "perpetrator", "score")


def write_predictions(stream: IO[str], names: Sequence[str], preds: Sequence, fmt: str) -> None:
    """Write ``preds`` (one per input name) in ``fmt``: table, json, jsonl, labelstudio or casualties.

    Every field comes from the results' own ``to_dict()`` (or ``to_labelstudio()``), so that the
    formats cannot drift apart from :mod:`conflict_ie.results`.

    Example:
        >>> import io; from conflict_ie.results import Prediction
        >>> buf = io.StringIO(); write_predictions(buf, ["a.txt"], [Prediction("x", ())], "jsonl")
        >>> buf.getvalue()
        '{"file": "a.txt", "text": "x", "entities": [], "relations": [], "casualties": []}\\n'
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; use one of {list(FORMATS)}")
    if len(names) != len(preds):
        # zip() would silently drop the unmatched tail.
        raise ValueError(f"{len(names)} name(s) for {len(preds)} prediction(s); give one name per prediction")
    if fmt == "json":
        json.dump([{"file": n, **p.to_dict()} for n, p in zip(names, preds)], stream, indent=2, ensure_ascii=False)
        stream.write("\n")
    elif fmt == "jsonl":
        for n, p in zip(names, preds):
            stream.write(json.dumps({"file": n, **p.to_dict()}, ensure_ascii=False) + "\n")
    elif fmt == "labelstudio":
        tasks = [{"data": {"text": p.text, "source_file": n}, "predictions": [p.to_labelstudio()]}
                 for n, p in zip(names, preds)]
        json.dump(tasks, stream, indent=1, ensure_ascii=False)
        stream.write("\n")
    elif fmt == "casualties":
        # CSV: the form an event-data researcher loads into a spreadsheet or pandas.
        writer = csv.DictWriter(stream, fieldnames=CASUALTY_FIELDS, lineterminator="\n")
        writer.writeheader()
        for n, p in zip(names, preds):
            for c in p.casualties:
                row = {k: v for k, v in c.to_dict().items() if k in CASUALTY_FIELDS}
                row["score"] = round(row["score"], 4)
                writer.writerow({"file": n, **row})
    else:  # table
        for n, p in zip(names, preds):
            stream.write(f"# {n}: {len(p.entities)} entities\n")
            stream.write(format_entities(p))
            if p.relations:
                stream.write(f"\n{len(p.relations)} relations\n")
                for r in p.relations:
                    d = r.to_dict()
                    # A symmetric relation is reported once per pair: no arrow head, since neither end leads.
                    arrow = f"<--{d['label']}-->" if d["symmetric"] else f"--{d['label']}-->"
                    stream.write(f"  {d['head_text']!r} {arrow} {d['tail_text']!r}  ({d['score']:.2f})\n")
            if p.casualties:
                stream.write(f"\n{len(p.casualties)} casualty records\n")
                for c in p.casualties:
                    d = c.to_dict()
                    stream.write(f"  {d['text']!r}: {d['casualty_type']}, min={d['count_min']} max={d['count_max']}"
                                 f"{' (approx.)' if d['approximate'] else ''}, location={d['location']}, "
                                 f"perpetrator={d['perpetrator']}\n")
            stream.write("\n")


def format_entities(pred) -> str:
    """An aligned plain-text table of entities; per-region attributes follow the text as ``name=value``.

    Example:
        >>> from conflict_ie.results import Entity, Prediction
        >>> e = Entity("CASUALTY_FIGURE", 0, 7, "2 dead.", 0.5, "e1", (("casualty_type", "killed"),))
        >>> print(format_entities(Prediction("2 dead.", (e,))), end="")
        start  end  label            score  text
        0      7    CASUALTY_FIGURE  0.50   2 dead.  casualty_type=killed
    """
    rows = [("start", "end", "label", "score", "text")]
    for e in pred.entities:
        d = e.to_dict()
        attrs = "".join(f"  {k}={v}" for k, v in d["attributes"].items())
        rows.append((str(d["start"]), str(d["end"]), d["label"], f"{d['score']:.2f}",
                     d["text"].replace("\n", " ") + attrs))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "".join(
        "  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] + "\n" for r in rows
    )
