"""Evaluate a model on documents and write ``metrics.json``, ``report.md`` and PNG plots.

The scores themselves are pure functions in :mod:`conflict_ie.evaluation`; this
module runs the predictor over gold documents, feeds them, and writes the report.
Plots use matplotlib's object API (``Figure``, no ``pyplot``), so importing or
running the report never switches a notebook's backend or needs a display.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from matplotlib.figure import Figure

from conflict_ie.alignment import word_tags
from conflict_ie.casualties import parse_count
from conflict_ie.documents import Document, Span
from conflict_ie.evaluation import (casualty_scores, confusion_matrix, error_counts, gold_relation_keys, ner_metrics,
                                    relation_key, relation_scores, span_errors, worst_errors)
from conflict_ie.predictor import Predictor
from conflict_ie.relation_data import CandidateStats


def evaluate_predictor(predictor, docs: Sequence[Document], *, batch_size: int = 16) -> tuple[dict[str, Any], dict]:
    """Score ``predictor`` on gold documents; returns ``(metrics, details)`` (details feed the report).

    Example:
        >>> # metrics, _ = evaluate_predictor(Predictor.from_pretrained("runs/demo"), test_docs)
    """
    outputs = predictor.ner([d.text for d in docs], batch_size=batch_size)
    pred_spans = [[s for s, _ in out.spans] for out in outputs]
    gold_tags = [word_tags(d, out.tdoc) for d, out in zip(docs, outputs)]
    pred_tags = [out.word_tags for out in outputs]
    labels = predictor.schema.entity_labels
    metrics = ner_metrics(docs, pred_spans, gold_tags, pred_tags, labels)
    errors = []
    for d, out in zip(docs, outputs):
        errors += span_errors(d, [s for s, _ in out.spans], {s.id: sc for s, sc in out.spans})
    details: dict[str, Any] = {"pred_spans": pred_spans, "errors": errors}
    if predictor.relation_model is not None:
        rel_metrics, rel_details = relation_report(predictor.relation_model, docs, pred_spans, batch_size=batch_size)
        metrics.update(rel_metrics)
        details.update(rel_details)
    return metrics, details


def relation_report(rx, docs: Sequence[Document], pred_spans: Sequence[Sequence[Span]], *, batch_size: int = 16):
    """The ``relations`` (on gold entities and end to end), ``relation_candidates`` and
    ``casualties`` blocks of ``metrics.json``, and the worst documents for the report."""
    schema = rx.schema
    symmetric = {r.label for r in schema.relations if r.symmetric}
    spec = schema.casualty_records
    gold, on_gold, e2e = set(), set(), set()
    stats = {"gold_entities": CandidateStats(), "end_to_end": CandidateStats()}
    pred_types: list[dict[str, str]] = []
    worst: list[tuple[int, str]] = []
    for doc, spans in zip(docs, pred_spans):
        gold_here = gold_relation_keys(doc, symmetric)
        gold |= gold_here
        rels, _ = rx.classify(doc.text, doc.spans, batch_size, stats["gold_entities"])
        on_gold |= {relation_key(doc.id, h, t, l, symmetric) for h, t, l, _ in rels}
        rels_e2e, attrs = rx.classify(doc.text, spans, batch_size, stats["end_to_end"])
        pred_here = {relation_key(doc.id, h, t, l, symmetric) for h, t, l, _ in rels_e2e}
        e2e |= pred_here
        types = {sid: value for sid, found in attrs.items() for name, value, _ in found
                 if spec is not None and name == spec.type_attribute}
        pred_types.append(types)
        misses = len(gold_here ^ pred_here)
        shown = [f"  - {doc.text[h.start:h.end]!r} --{l}--> {doc.text[t.start:t.end]!r} ({s:.2f})"
                 f"{'' if relation_key(doc.id, h, t, l, symmetric) in gold_here else ' ✗'}"
                 for h, t, l, s in rels_e2e]
        figures = []
        for p in spans:
            if spec is not None and p.label == spec.figure:
                count = parse_count(doc.text[p.start:p.end])
                figures.append(f"  - casualty “{doc.text[p.start:p.end]}”: type {types.get(p.id, '-')}, count "
                               f"{count.count_min}..{count.count_max}")
        worst.append((misses, "\n".join([f"### {doc.id}: {misses} relation errors (end to end)", ""] + shown[:25]
                                        + figures[:15] + [""])))
    worst.sort(key=lambda x: -x[0])
    labels = schema.relation_labels
    metrics: dict[str, Any] = {
        "relations": {"gold_entities": relation_scores(gold, on_gold, labels),
                      "end_to_end": relation_scores(gold, e2e, labels)},
        "relation_candidates": {k: v.to_dict() for k, v in stats.items()},
    }
    if spec is not None and spec.type_attribute:
        metrics["casualties"] = casualty_scores(
            docs, pred_spans, pred_types, figure=spec.figure, type_attribute=spec.type_attribute,
            count=lambda text: (parse_count(text).count_min, parse_count(text).count_max))
    return metrics, {"worst_documents": [w for _, w in worst[:3]]}


def evaluate_run(model: str | Path, docs: Sequence[Document], *, report_dir: str | Path | None = None,
                 learning_curve: str | Path | None = None) -> dict[str, Any]:
    """Load ``model`` (run folder, checkpoint or hub id), score it on ``docs``, write the report."""
    predictor = Predictor.from_pretrained(model)
    metrics, details = evaluate_predictor(predictor, docs)
    if report_dir is not None:
        history = Path(learning_curve) if learning_curve else Path(model) / "log_history.json"
        write_report(Path(report_dir), metrics, details, docs, predictor.schema.entity_labels,
                     history if history.exists() else None)
    return metrics


def _fmt(block: dict[str, float]) -> str:
    return f"{block['precision']:.3f} | {block['recall']:.3f} | {block['f1']:.3f}"


def write_report(out: Path, metrics: dict[str, Any], details: dict[str, Any], docs: Sequence[Document],
                 labels: Sequence[str], log_history: Path | None) -> None:
    """``metrics.json``, ``report.md`` and the plots in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    names, matrix = confusion_matrix(docs, details["pred_spans"], labels)
    plots = _plots(out, metrics, names, matrix, log_history)
    ner = metrics["ner"]
    lines = [
        "# Evaluation report",
        "",
        f"{metrics['n_documents']} documents, {metrics['n_gold_entities']} gold entities, "
        f"{metrics['n_pred_entities']} predicted. Documents are scored whole.",
        "",
        "| scoring | precision | recall | F1 |",
        "|---|---|---|---|",
        f"| strict (exact character spans), micro | {_fmt(ner['strict']['micro'])} |",
        f"| strict, macro | {_fmt(ner['strict']['macro'])} |",
        f"| lenient (seqeval default, word tags as emitted), micro | {_fmt(ner['lenient']['micro'])} |",
        f"| lenient, macro | {_fmt(ner['lenient']['macro'])} |",
        f"| partial overlap, micro | {_fmt(ner['partial_overlap']['micro'])} |",
        "",
        "## Per label",
        "",
        "| label | strict P | strict R | strict F1 | lenient F1 | support |",
        "|---|---|---|---|---|---|",
    ]
    for label in labels:
        s, l = ner["strict"]["per_label"][label], ner["lenient"]["per_label"][label]
        lines.append(f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {l['f1']:.3f} | "
                     f"{s['support']} |")
    if "relations" in metrics:
        lines += ["", "## Relations (strict: both spans, direction and label)", "",
                  "| setting | precision | recall | F1 |", "|---|---|---|---|"]
        for key in ("gold_entities", "end_to_end"):
            lines.append(f"| {key} | {_fmt(metrics['relations'][key]['micro'])} |")
        cas = metrics.get("casualties")
        if cas:
            lines += ["", f"Casualty figures found: {cas['n']}; type accuracy {cas['type_accuracy']:.3f}; "
                          f"exact counts {cas['count_exact']:.3f}."]
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    errors = details["errors"]
    lines += ["", "## Errors", "", "Counts: " + ", ".join(f"{k} {v}" for k, v in error_counts(errors).items()), "",
              "The 20 worst (wrong types and confident false alarms first):", "",
              "| # | kind | gold | predicted | score | context |", "|---|---|---|---|---|---|"]
    for i, e in enumerate(worst_errors(errors), 1):
        g = f"{e['gold']['label']} “{e['gold']['text']}”" if e["gold"] else "—"
        p = f"{e['pred']['label']} “{e['pred']['text']}”" if e["pred"] else "—"
        ctx = e["context"].replace("|", "\\|")
        lines.append(f"| {i} | {e['kind']} | {g} | {p} | {e['score']:.2f} | {ctx} |")
    if details.get("worst_documents"):
        lines += ["", "## Relations and casualty records of the worst documents", ""]
        lines += details["worst_documents"]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _plots(out: Path, metrics, names, matrix, log_history: Path | None) -> list[Path]:
    paths = []
    labels = names[:-1]
    ner = metrics["ner"]
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [ner["strict"]["per_label"][l]["f1"] for l in labels], 0.4, label="strict")
    ax.bar([i + 0.2 for i in x], [ner["lenient"]["per_label"][l]["f1"] for l in labels], 0.4, label="lenient")
    ax.set_xticks(list(x), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title("Entity F1 per label")
    ax.legend()
    fig.tight_layout()
    paths.append(out / "per_label_f1.png")
    fig.savefig(paths[-1], dpi=110)

    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted (O: nothing)")
    ax.set_ylabel("gold (O: nothing)")
    peak = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > peak / 2 else "black")
    ax.set_title("Span-level confusion")
    fig.tight_layout()
    paths.append(out / "confusion_matrix.png")
    fig.savefig(paths[-1], dpi=110)

    if log_history is not None:
        history = json.loads(log_history.read_text())
        train = [(h["step"], h["loss"]) for h in history if "loss" in h]
        evals = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
        f1 = [(h["step"], h["eval_entity_f1"]) for h in history if "eval_entity_f1" in h]
        fig = Figure(figsize=(7, 3.5))
        ax = fig.subplots()
        if train:
            ax.plot(*zip(*train), label="train loss")
        if evals:
            ax.plot(*zip(*evals), "o-", label="validation loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if f1:
            ax2 = ax.twinx()
            ax2.plot(*zip(*f1), "s--", color="tab:green", label="validation entity F1")
            ax2.set_ylim(0, 1)
            ax2.set_ylabel("F1")
            ax2.legend(loc="center right")
        ax.legend(loc="upper right")
        ax.set_title("Learning curve")
        fig.tight_layout()
        paths.append(out / "learning_curve.png")
        fig.savefig(paths[-1], dpi=110)
    return paths
