"""Honest entity metrics, error analysis and the evaluation report.

Three views of the same predictions, all on whole documents (never per window):

- ``strict``: exact character spans (start, end, label) -- what a user of the
  offsets gets; equal to seqeval's strict IOB2 mode when spans follow words;
- ``lenient``: ``seqeval``'s default mode on the word-level tag sequences as the
  model emits them, before any repair -- how published CoNLL-style numbers are
  computed, so comparisons are fair;
- ``partial_overlap``: a prediction counts when it overlaps a gold span of the
  same label.

The seqeval functions are used directly (``seqeval.metrics``), not through
``evaluate.load``, which would fetch a script from the hub.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

from seqeval.metrics import classification_report

from conflict_ie.documents import Document, Span


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (0 where undefined).

    Example:
        >>> prf(1, 2, 4)
        {'precision': 0.5, 'recall': 0.25, 'f1': 0.3333333333333333}
    """
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def _block(tp: Counter, pred: Counter, gold: Counter, labels: Iterable[str]) -> dict[str, Any]:
    labels = list(labels)
    per_label = {}
    for label in labels:
        per_label[label] = {**prf(tp[label], pred[label], gold[label]), "support": gold[label]}
    micro = prf(sum(tp.values()), sum(pred.values()), sum(gold.values()))
    with_support = [per_label[l] for l in labels if gold[l] > 0]
    macro = {
        k: (sum(m[k] for m in with_support) / len(with_support) if with_support else 0.0)
        for k in ("precision", "recall", "f1")
    }
    return {"micro": micro, "macro": macro, "per_label": per_label}


def strict_scores(gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[Span]], labels: Iterable[str]):
    """Exact-span scores over documents (lists of spans per document).

    Example:
        >>> g = [[Span("a", 0, 5, "X")]]; p = [[Span("b", 0, 4, "X")]]
        >>> strict_scores(g, p, ["X"])["micro"]["f1"]
        0.0
    """
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for g_spans, p_spans in zip(gold, pred, strict=True):
        g = {(s.start, s.end, s.label) for s in g_spans}
        p = {(s.start, s.end, s.label) for s in p_spans}
        for _, _, label in g:
            n_gold[label] += 1
        for item in p:
            n_pred[item[2]] += 1
            if item in g:
                tp[item[2]] += 1
    return _block(tp, n_pred, n_gold, labels)


def partial_scores(gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[Span]]) -> dict[str, Any]:
    """A prediction is right when it overlaps a gold span of its label; a gold span is found likewise."""
    n_pred = n_gold = pred_hit = gold_hit = 0
    for g_spans, p_spans in zip(gold, pred, strict=True):
        n_pred += len(p_spans)
        n_gold += len(g_spans)
        pred_hit += sum(any(p.label == g.label and p.overlaps(g) for g in g_spans) for p in p_spans)
        gold_hit += sum(any(p.label == g.label and p.overlaps(g) for p in p_spans) for g in g_spans)
    p = pred_hit / n_pred if n_pred else 0.0
    r = gold_hit / n_gold if n_gold else 0.0
    return {"micro": {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}}


def lenient_scores(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], labels: Iterable[str]):
    """seqeval's default (conlleval-like) mode on word-level tag sequences, one per document."""
    rep = classification_report(
        [list(t) for t in gold_tags], [list(t) for t in pred_tags], output_dict=True, zero_division=0
    )
    labels = list(labels)
    per_label = {}
    for label in labels:
        row = rep.get(label, {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
        support = int(row["support"])
        per_label[label] = {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": support,
        }
    micro = rep.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    with_support = [per_label[l] for l in labels if per_label[l]["support"] > 0]
    macro = {
        k: (sum(m[k] for m in with_support) / len(with_support) if with_support else 0.0)
        for k in ("precision", "recall", "f1")
    }
    return {
        "micro": {"precision": float(micro["precision"]), "recall": float(micro["recall"]),
                  "f1": float(micro["f1-score"])},
        "macro": macro,
        "per_label": per_label,
    }


def ner_metrics(
    gold_docs: Sequence[Document],
    pred_spans: Sequence[Sequence[Span]],
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
    labels: Iterable[str],
) -> dict[str, Any]:
    """The ``metrics.json`` entity block (shape fixed; later additions never rename it)."""
    labels = list(labels)
    gold_spans = [d.spans for d in gold_docs]
    return {
        "ner": {
            "strict": strict_scores(gold_spans, pred_spans, labels),
            "lenient": lenient_scores(gold_tags, pred_tags, labels),
            "partial_overlap": partial_scores(gold_spans, pred_spans),
        },
        "n_documents": len(gold_docs),
        "n_gold_entities": sum(len(s) for s in gold_spans),
        "n_pred_entities": sum(len(s) for s in pred_spans),
    }


# ------------------------------------------------------------------ error analysis
def _context(text: str, start: int, end: int, width: int = 50) -> str:
    left = text[max(0, start - width) : start].replace("\n", " ")
    right = text[end : end + width].replace("\n", " ")
    return f"…{left}[[{text[start:end]}]]{right}…"


def span_errors(doc: Document, pred: Sequence[Span], scores: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Classify every disagreement between gold and predicted spans of one document.

    Example:
        >>> d = Document("1", "Wagner Group hit Kyiv", (Span("g", 0, 12, "ARMED_GROUP"), Span("l", 17, 21, "LOCATION")))
        >>> [e["kind"] for e in span_errors(d, [Span("p", 0, 6, "ARMED_GROUP")])]
        ['boundary', 'miss']
    """
    scores = scores or {}
    errors = []
    gold_exact = {(s.start, s.end, s.label) for s in doc.spans}
    pred_exact = {(s.start, s.end, s.label) for s in pred}
    used_pred = set()
    for g in doc.spans:
        if (g.start, g.end, g.label) in pred_exact:
            used_pred.add((g.start, g.end, g.label))
            continue
        overlapping = [p for p in pred if p.overlaps(g) and (p.start, p.end, p.label) not in gold_exact]
        if not overlapping:
            kind, p = "miss", None
        else:
            p = max(overlapping, key=lambda x: min(x.end, g.end) - max(x.start, g.start))
            same_bounds = (p.start, p.end) == (g.start, g.end)
            kind = "type_confusion" if same_bounds else ("boundary" if p.label == g.label else "boundary_and_type")
            used_pred.add((p.start, p.end, p.label))
        lo, hi = (min(g.start, p.start), max(g.end, p.end)) if p else (g.start, g.end)
        errors.append(
            {
                "kind": kind,
                "doc_id": doc.id,
                "gold": {"label": g.label, "start": g.start, "end": g.end, "text": doc.text[g.start : g.end]},
                "pred": None if p is None else {"label": p.label, "start": p.start, "end": p.end,
                                                "text": doc.text[p.start : p.end]},
                "score": float(scores.get(p.id, 1.0)) if p else 0.0,
                "context": _context(doc.text, lo, hi),
            }
        )
    for p in pred:
        key = (p.start, p.end, p.label)
        # Unmatched predictions are false alarms, also those overlapping a gold span another prediction took.
        if key in used_pred or key in gold_exact:
            continue
        errors.append(
            {
                "kind": "false_alarm",
                "doc_id": doc.id,
                "gold": None,
                "pred": {"label": p.label, "start": p.start, "end": p.end, "text": doc.text[p.start : p.end]},
                "score": float(scores.get(p.id, 1.0)),
                "context": _context(doc.text, p.start, p.end),
            }
        )
    return errors


#: How bad an error is for a researcher using the output, worst first.
_SEVERITY = {"type_confusion": 0, "false_alarm": 1, "boundary_and_type": 2, "miss": 3, "boundary": 4}


def worst_errors(errors: Sequence[dict[str, Any]], n: int = 20) -> list[dict[str, Any]]:
    """The ``n`` worst errors: wrong types and confident false alarms before misses and boundary slips."""
    return sorted(errors, key=lambda e: (_SEVERITY[e["kind"]], -e["score"], e["doc_id"]))[:n]


def confusion_matrix(gold_docs: Sequence[Document], pred_spans: Sequence[Sequence[Span]], labels: Sequence[str]):
    """Span-level confusion: rows gold label (or ``O``), columns predicted label (or ``O``).

    A gold span pairs with the predicted span that overlaps it most; unpaired gold spans are
    misses (column ``O``), unpaired predictions false alarms (row ``O``).
    """
    names = list(labels) + ["O"]
    index = {l: i for i, l in enumerate(names)}
    matrix = [[0] * len(names) for _ in names]
    for doc, preds in zip(gold_docs, pred_spans, strict=True):
        used = set()
        for g in doc.spans:
            cands = [(min(p.end, g.end) - max(p.start, g.start), k) for k, p in enumerate(preds) if p.overlaps(g)
                     and k not in used]
            if cands:
                _, k = max(cands)
                used.add(k)
                matrix[index[g.label]][index[preds[k].label]] += 1
            else:
                matrix[index[g.label]][index["O"]] += 1
        for k, p in enumerate(preds):
            if k not in used and not any(p.overlaps(g) for g in doc.spans):
                matrix[index["O"]][index[p.label]] += 1
    return names, matrix


def error_counts(errors: Iterable[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for e in errors:
        out[e["kind"]] += 1
    return dict(sorted(out.items()))


# ------------------------------------------------------------------ relations and casualties
#: A relation as scored: ``(doc_id, head start, head end, head label, tail start, tail end, tail label, label)``.
RelationKey = tuple


def relation_key(doc_id: str, head: Span, tail: Span, label: str, symmetric: Collection[str] = ()) -> RelationKey:
    """The strict identity of a relation: both spans, the direction and the label. For a label in
    ``symmetric`` the two spans are put in text order, so that either direction matches.

    Example:
        >>> a, b = Span("a", 0, 3, "ARMED_GROUP"), Span("b", 8, 11, "ARMED_GROUP")
        >>> relation_key("d", b, a, "FIGHTS", {"FIGHTS"}) == relation_key("d", a, b, "FIGHTS", {"FIGHTS"})
        True
        >>> relation_key("d", b, a, "LED_BY") == relation_key("d", a, b, "LED_BY")
        False
    """
    if label in symmetric and (tail.start, tail.end, tail.label) < (head.start, head.end, head.label):
        head, tail = tail, head
    return (doc_id, head.start, head.end, head.label, tail.start, tail.end, tail.label, label)


def gold_relation_keys(doc: Document, symmetric: Collection[str] = ()) -> set[RelationKey]:
    """The relation keys of a gold document.

    Example:
        >>> from conflict_ie.documents import Relation
        >>> d = Document("d", "A B", (Span("a", 0, 1, "X"), Span("b", 2, 3, "X")), (Relation("b", "a", "R"),))
        >>> sorted(gold_relation_keys(d, {"R"}))
        [('d', 0, 1, 'X', 2, 3, 'X', 'R')]
    """
    by_id = doc.span_by_id()
    return {relation_key(doc.id, by_id[r.head], by_id[r.tail], r.label, symmetric) for r in doc.relations}


def relation_scores(gold: Collection[RelationKey], pred: Collection[RelationKey], labels: Iterable[str]):
    """Micro and per-label precision, recall and F1 of relation keys (strict: exact spans, label, and
    the direction unless the key was made symmetric).

    Example:
        >>> g = {("d", 0, 1, "X", 2, 3, "X", "R"), ("d", 0, 1, "X", 4, 5, "X", "R")}
        >>> p = {("d", 0, 1, "X", 2, 3, "X", "R"), ("d", 2, 3, "X", 4, 5, "X", "R")}
        >>> relation_scores(g, p, ["R"])["micro"]
        {'precision': 0.5, 'recall': 0.5, 'f1': 0.5}
    """
    gold, pred = set(gold), set(pred)
    per_label = {}
    for label in labels:
        g = {k for k in gold if k[-1] == label}
        p = {k for k in pred if k[-1] == label}
        per_label[label] = {**prf(len(g & p), len(p), len(g)), "support": len(g)}
    return {"micro": prf(len(gold & pred), len(pred), len(gold)), "per_label": per_label}


def casualty_scores(gold_docs: Sequence[Document], pred_spans: Sequence[Sequence[Span]],
                    pred_types: Sequence[Mapping[str, str]], *, figure: str, type_attribute: str,
                    count: Callable[[str], tuple]) -> dict[str, Any]:
    """Casualty-type accuracy and exact-count share over the gold figures that were found.

    A gold figure is found when a predicted span of its label overlaps it; it pairs with the one
    that overlaps it most. ``pred_types`` maps each predicted span id to its predicted type;
    ``count`` turns a figure's text into a comparable count (e.g. ``(count_min, count_max)``).

    Example:
        >>> d = Document("d", "12 dead, 3 hurt", (Span("g1", 0, 7, "C", {"t": "killed"}),
        ...                                       Span("g2", 9, 15, "C", {"t": "injured"})))
        >>> p = [[Span("p1", 0, 7, "C"), Span("p2", 9, 10, "C")]]
        >>> casualty_scores([d], p, [{"p1": "killed", "p2": "killed"}], figure="C", type_attribute="t",
        ...                 count=lambda s: s.split()[0])
        {'type_accuracy': 0.5, 'count_exact': 1.0, 'n': 2}
    """
    n = type_right = count_right = 0
    for doc, spans, types in zip(gold_docs, pred_spans, pred_types, strict=True):
        for g in doc.spans:
            if g.label != figure:
                continue
            match = [p for p in spans if p.label == g.label and p.overlaps(g)]
            if not match:
                continue
            p = max(match, key=lambda x: min(x.end, g.end) - max(x.start, g.start))
            n += 1
            type_right += types.get(p.id) == g.attributes.get(type_attribute)
            count_right += count(doc.text[g.start:g.end]) == count(doc.text[p.start:p.end])
    return {"type_accuracy": type_right / n if n else 0.0, "count_exact": count_right / n if n else 0.0, "n": n}
