"""Inter-annotator agreement: span-level F1 between annotators who labelled the same tasks.

For every pair of annotators and every task both completed (cancelled
annotations excluded), exact spans (start, end, label) of one are compared
with the other's; F1 is symmetric, so neither needs to be the reference.
Counts are pooled over tasks (micro) per label and overall.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping

from conflict_ie.documents import Provenance
from conflict_ie.evaluation import prf
from conflict_ie.errors import InputError
from conflict_ie.labelstudio import ReadReport, _load_json, annotator_of, build_document, usable_annotations
from conflict_ie.labelstudio_values import json_type, task_id_of
from conflict_ie.schema import LabelSchema


def agreement(source: str | Path, schema: LabelSchema, *, text_field: str | None = None) -> dict[str, Any]:
    """Pairwise span F1 per label for annotators who share tasks.

    Returns ``{"pairs": [{"annotators": [a, b], "tasks": n, "micro": {...}, "per_label": {...}}],
    "overall": {...}, "tasks_with_several_annotators": n}``.
    """
    tasks, where = _load_json(source)
    text_field = text_field or schema.text_field
    pooled = defaultdict(lambda: [Counter(), Counter(), Counter()])  # pair -> tp, a-count, b-count per label
    shared = Counter()
    n_multi = 0
    for index, task in enumerate(tasks):
        # The reader's structural checks, so that a malformed task is named rather than skipped.
        if not isinstance(task, Mapping):
            raise InputError(f"is {json_type(task)}, not a task object", source=where, task=f"#{index}",
                             reason="malformed_task")
        task_id = task_id_of(task, index, where)
        data = task.get("data")
        text = data.get(text_field) if isinstance(data, Mapping) else None
        if not isinstance(text, str):
            raise InputError(f"has no string text field {text_field!r} in 'data'", source=where, task=task_id,
                             field=f"data.{text_field}", reason="missing_text")
        by_annotator = {}
        for ann in usable_annotations(task, where=where):
            who = annotator_of(ann) or "?"
            # Lenient parse: agreement is about what annotators did, bad regions are counted elsewhere.
            doc = build_document(str(task.get("id")), text, ann.get("result") or [], schema,
                                 provenance=Provenance(), lenient=True, report=ReadReport(), where=where)
            by_annotator[who] = {(s.start, s.end, s.label) for s in doc.spans}
        if len(by_annotator) > 1:
            n_multi += 1
        for a, b in combinations(sorted(by_annotator), 2):
            tp, ca, cb = pooled[(a, b)]
            shared[(a, b)] += 1
            for item in by_annotator[a]:
                ca[item[2]] += 1
                if item in by_annotator[b]:
                    tp[item[2]] += 1
            for item in by_annotator[b]:
                cb[item[2]] += 1
    pairs = []
    total = [Counter(), Counter(), Counter()]
    for (a, b), (tp, ca, cb) in sorted(pooled.items()):
        for acc, c in zip(total, (tp, ca, cb)):
            acc.update(c)
        pairs.append({"annotators": [a, b], "tasks": shared[(a, b)], **_scores(tp, ca, cb, schema)})
    return {"pairs": pairs, "overall": _scores(*total, schema), "tasks_with_several_annotators": n_multi}


def _scores(tp: Counter, ca: Counter, cb: Counter, schema: LabelSchema) -> dict[str, Any]:
    per_label = {}
    for label in schema.entity_labels:
        s = prf(tp[label], cb[label], ca[label])
        per_label[label] = {"f1": s["f1"], "a": ca[label], "b": cb[label], "matched": tp[label]}
    micro = prf(sum(tp.values()), sum(cb.values()), sum(ca.values()))
    return {"micro": {"f1": micro["f1"], "matched": sum(tp.values())}, "per_label": per_label}


def format_agreement(result: dict[str, Any]) -> str:
    """A readable table of :func:`agreement`'s result."""
    lines = [f"tasks with several annotators: {result['tasks_with_several_annotators']}"]
    if not result["pairs"]:
        lines.append("no two annotators share a task: agreement cannot be computed")
        return "\n".join(lines)
    for pair in result["pairs"] + [{"annotators": ["all pairs", ""], "tasks": "", **result["overall"]}]:
        a, b = pair["annotators"]
        head = f"{a} vs {b}, {pair['tasks']} task(s)" if b else "all pairs pooled"
        lines.append(f"\n{head}: span F1 {pair['micro']['f1']:.3f}")
        for label, s in pair["per_label"].items():
            lines.append(f"  {label:<20} F1 {s['f1']:.3f}  ({s['matched']} matched of {s['a']} / {s['b']})")
    return "\n".join(lines)
