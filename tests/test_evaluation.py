"""Golden tests for the metrics on hand-built predictions."""

import pytest
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from conflict_ie.alignment import Word, spans_from_word_tags
from conflict_ie.documents import Document, Span
from conflict_ie.evaluation import (confusion_matrix, lenient_scores, ner_metrics, partial_scores, span_errors,
                                    strict_scores, worst_errors)

LABELS = ["ARMED_GROUP", "LOCATION"]
#        0      1     2      3    4
TEXT = "Wagner Group shelled Kyiv today"
WORDS = [Word(0, 6, 0, 0), Word(7, 12, 1, 1), Word(13, 20, 2, 2), Word(21, 25, 3, 3), Word(26, 31, 4, 4)]
GOLD_TAGS = ["B-ARMED_GROUP", "I-ARMED_GROUP", "O", "B-LOCATION", "O"]


def spans(tags):
    return [s for s, _ in spans_from_word_tags(tags, WORDS)]


def gold_doc():
    return Document("d", TEXT, tuple(spans(GOLD_TAGS)))


def test_perfect():
    m = ner_metrics([gold_doc()], [spans(GOLD_TAGS)], [GOLD_TAGS], [GOLD_TAGS], LABELS)
    for mode in ("strict", "lenient"):
        assert m["ner"][mode]["micro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert m["n_gold_entities"] == m["n_pred_entities"] == 2


def test_strict_and_lenient_differ_on_ill_formed_tags():
    # The model emits I- without B-: seqeval's default mode reads "I-ARMED_GROUP I-ARMED_GROUP" as one chunk
    # (so lenient counts it right); the spans after repair are the same -> strict also right. But an
    # I-LOCATION after B-ARMED_GROUP is a type switch: lenient reads a LOCATION chunk starting there.
    pred = ["I-ARMED_GROUP", "I-ARMED_GROUP", "O", "I-LOCATION", "O"]
    m = ner_metrics([gold_doc()], [spans(pred)], [GOLD_TAGS], [pred], LABELS)
    assert m["ner"]["lenient"]["micro"]["f1"] == 1.0
    assert m["ner"]["strict"]["micro"]["f1"] == 1.0
    # seqeval's strict IOB2 mode rejects the ill-formed chunks that the default mode accepts:
    assert f1_score([GOLD_TAGS], [pred], mode="strict", scheme=IOB2) == 0.0


def test_strict_is_character_exact_where_lenient_is_word_level():
    # Gold span covers "Wagner" only inside "Wagner Group" at character level (a sub-word edge is impossible
    # here, so emulate a gold span that ends mid-entity): strict compares characters, lenient word tags.
    gold = Document("d", TEXT, (Span("g", 0, 12, "ARMED_GROUP"), Span("l", 21, 25, "LOCATION")))
    pred_tags = ["B-ARMED_GROUP", "O", "O", "B-LOCATION", "O"]
    m = ner_metrics([gold], [spans(pred_tags)], [GOLD_TAGS], [pred_tags], LABELS)
    assert m["ner"]["strict"]["micro"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    assert m["ner"]["lenient"]["micro"]["f1"] == pytest.approx(0.5)
    assert m["ner"]["partial_overlap"]["micro"]["f1"] == 1.0
    assert m["ner"]["strict"]["per_label"]["ARMED_GROUP"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                                               "support": 1}


def test_strict_equals_seqeval_strict_on_well_formed_tags():
    golds = [GOLD_TAGS, ["O", "B-LOCATION", "I-LOCATION", "O", "B-ARMED_GROUP"]]
    preds = [["B-ARMED_GROUP", "B-ARMED_GROUP", "O", "B-LOCATION", "O"], ["O", "B-LOCATION", "I-LOCATION", "O", "O"]]
    ours = strict_scores([spans(g) for g in golds], [spans(p) for p in preds], LABELS)["micro"]["f1"]
    assert ours == pytest.approx(f1_score(golds, preds, mode="strict", scheme=IOB2))


def test_documents_count_whole():
    # Two documents; one long. Micro counts entities, not windows or documents.
    s = strict_scores([[Span("a", 0, 1, "LOCATION")] * 1, [Span(str(i), i, i + 1, "LOCATION") for i in range(9)]],
                      [[], [Span(str(i), i, i + 1, "LOCATION") for i in range(9)]], LABELS)
    assert s["micro"]["recall"] == pytest.approx(0.9) and s["micro"]["precision"] == 1.0
    assert s["macro"]["f1"] == s["per_label"]["LOCATION"]["f1"]  # labels without support are left out of macro


def test_partial_overlap():
    gold = [[Span("g", 0, 12, "ARMED_GROUP")]]
    assert partial_scores(gold, [[Span("p", 7, 12, "ARMED_GROUP")]])["micro"]["f1"] == 1.0
    assert partial_scores(gold, [[Span("p", 7, 12, "LOCATION")]])["micro"]["f1"] == 0.0


def test_lenient_matches_seqeval_directly():
    preds = [["I-ARMED_GROUP", "B-ARMED_GROUP", "O", "B-LOCATION", "I-LOCATION"]]
    assert lenient_scores([GOLD_TAGS], preds, LABELS)["micro"]["f1"] == pytest.approx(f1_score([GOLD_TAGS], preds))


def test_error_kinds_and_confusion():
    gold = Document("d", TEXT, (Span("g", 0, 12, "ARMED_GROUP"), Span("l", 21, 25, "LOCATION")))
    pred = [Span("p1", 0, 12, "LOCATION"), Span("p2", 26, 31, "LOCATION")]
    errors = span_errors(gold, pred, {"p1": 0.9, "p2": 0.8})
    assert sorted(e["kind"] for e in errors) == ["false_alarm", "miss", "type_confusion"]
    assert worst_errors(errors, 1)[0]["kind"] == "type_confusion"
    names, matrix = confusion_matrix([gold], [pred], LABELS)
    assert names == ["ARMED_GROUP", "LOCATION", "O"]
    assert matrix == [[0, 1, 0], [0, 0, 1], [0, 1, 0]]


def test_the_report_keeps_the_callers_matplotlib_backend(tmp_path):
    """Importing and running the report must not switch a notebook's backend (it draws through
    ``matplotlib.figure.Figure``, never ``pyplot``). Run apart, so that this process's backend
    stays untouched either way."""
    import subprocess
    import sys

    code = f"""
import matplotlib
matplotlib.use("svg")
from pathlib import Path
from conflict_ie.documents import Document, Span
from conflict_ie.evaluation import ner_metrics
from conflict_ie.report import write_report
doc = Document("d", "Wagner Group", (Span("a", 0, 12, "ARMED_GROUP"),))
metrics = ner_metrics([doc], [[Span("p", 0, 6, "ARMED_GROUP")]], [["B-ARMED_GROUP", "I-ARMED_GROUP"]],
                      [["B-ARMED_GROUP", "O"]], ["ARMED_GROUP"])
write_report(Path({str(tmp_path)!r}), metrics, {{"pred_spans": [[Span("p", 0, 6, "ARMED_GROUP")]], "errors": []}},
             [doc], ["ARMED_GROUP"], None)
import sys
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["svg", "False"]
    assert (tmp_path / "per_label_f1.png").stat().st_size > 1000
