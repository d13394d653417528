"""Writing predictions for people and programs: a table, JSON, JSONL, Label Studio tasks, casualty rows."""

from __future__ import annotations

import csv
import json
from typing import IO, Sequence


def write_predictions(stream: IO[str], names: Sequence[str], preds: Sequence, fmt: str) -> None:
    """Write ``preds`` (one per input name) in ``fmt``: table, json, jsonl, labelstudio or casualties.

    Example:
        >>> import io; from conflict_ie.predictor import Prediction
        >>> buf = io.StringIO(); write_predictions(buf, ["a.txt"], [Prediction("x", ())], "jsonl")
        >>> buf.getvalue().startswith('{"file": "a.txt"')
        True
    """
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
        fields = ["file", "text", "start", "end", "count_min", "count_max", "approximate", "casualty_type",
                  "location", "perpetrator", "score"]
        writer = csv.DictWriter(stream, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for n, p in zip(names, preds):
            for c in p.casualties:
                row = {k: getattr(c, k) for k in fields if k != "file"}
                row["score"] = round(row["score"], 4)
                writer.writerow({"file": n, **row})
    else:  # table
        for n, p in zip(names, preds):
            stream.write(f"# {n}: {len(p.entities)} entities\n")
            stream.write(format_entities(p))
            if p.relations:
                stream.write(f"\n{len(p.relations)} relations\n")
                for r in p.relations:
                    stream.write(f"  {r.head.text!r} --{r.label}--> {r.tail.text!r}  ({r.score:.2f})\n")
            if p.casualties:
                stream.write(f"\n{len(p.casualties)} casualty records\n")
                for c in p.casualties:
                    stream.write(f"  {c.text!r}: {c.casualty_type}, min={c.count_min} max={c.count_max}"
                                 f"{' (approx.)' if c.approximate else ''}, location={c.location}, "
                                 f"perpetrator={c.perpetrator}\n")
            stream.write("\n")


def format_entities(pred) -> str:
    """An aligned plain-text table of entities."""
    rows = [("start", "end", "label", "score", "text")]
    rows += [(str(e.start), str(e.end), e.label, f"{e.score:.2f}", e.text.replace("\n", " ")) for e in pred.entities]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "".join(
        "  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] + "\n" for r in rows
    )
