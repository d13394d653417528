import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conflict_ie.alignment import (AlignmentReport, decode_words, make_windows, pick_central, spans_from_word_tags,
                                   tokenize_document, window_bounds, word_tags)
from conflict_ie.documents import Document, Span
from conflict_ie.labelstudio import documents_to_tasks, read_labelstudio
from tiny import word_tokenizer

VOCAB = ["wagner", "group", "kyiv", "shelled", "the", "army", "22", "people", "drones", "said", "governor", ",", ".",
         "-", "ü", "naïve"]
LABELS = ["ARMED_GROUP", "OFFICIAL", "CASUALTY_FIGURE", "LOCATION", "WEAPON"]
TOK = word_tokenizer(VOCAB)


@st.composite
def documents(draw):
    words = draw(st.lists(st.sampled_from(VOCAB), min_size=1, max_size=60))
    text, offsets = "", []
    for w in words:
        sep = draw(st.sampled_from([" ", "  ", "\n", "\t"])) if text else draw(st.sampled_from(["", " "]))
        text += sep
        offsets.append((len(text), len(text) + len(w)))
        text += w
    spans, i = [], 0
    while i < len(words):
        if draw(st.booleans()):
            n = draw(st.integers(1, 4))
            j = min(len(words), i + n)
            spans.append(Span(f"r{len(spans)}", offsets[i][0], offsets[j - 1][1], draw(st.sampled_from(LABELS))))
            i = j
        else:
            i += 1
    return Document("d", text, tuple(spans))


def _with_casualty_types(doc):
    # Casualty figures need a casualty_type to pass the strict reader.
    spans = tuple(Span(s.id, s.start, s.end, s.label, {"casualty_type": "killed"} if s.label == "CASUALTY_FIGURE"
                       else {}) for s in doc.spans)
    return Document(doc.id, doc.text, spans)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents(), max_length=st.integers(5, 24), stride_frac=st.floats(0, 0.9),
       all_tokens=st.booleans())
def test_spans_survive_labelstudio_windows_bio(doc, max_length, stride_frac, all_tokens, schema):
    doc = _with_casualty_types(doc)
    (read,) = read_labelstudio(documents_to_tasks([doc]), schema).documents
    assert [(s.start, s.end, s.label) for s in read.spans] == [(s.start, s.end, s.label) for s in doc.spans]
    content = max_length - 2
    stride = int(stride_frac * (content - 1))
    report = AlignmentReport()
    rows = make_windows(read, TOK, max_length=max_length, stride=stride, label2id=schema.label2id,
                        label_all_tokens=all_tokens, report=report)
    assert not report.misaligned and all(len(r["input_ids"]) <= max_length for r in rows)
    tdoc = tokenize_document(read.text, TOK)
    bounds = [(r["token_start"], r["token_end"]) for r in rows]
    n = len(schema.bio_tags)
    probs = []
    for r in rows:
        labels = np.array(r["labels"][1:-1])
        onehot = np.zeros((len(labels), n), dtype=np.float32)
        onehot[labels >= 0, labels[labels >= 0]] = 1.0
        probs.append(onehot)
    tags, _ = decode_words(tdoc, bounds, probs, schema.id2label)
    assert tags == word_tags(read, tdoc)
    back = [(s.start, s.end, s.label) for s, _ in spans_from_word_tags(tags, tdoc.words)]
    assert back == [(s.start, s.end, s.label) for s in read.spans]


def test_window_bounds_cover_and_overlap():
    tdoc = tokenize_document(" ".join(["wagner group"] * 40), TOK)
    bounds = window_bounds(tdoc, 10, 3)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(tdoc.ids)
    for (a0, a1), (b0, b1) in zip(bounds, bounds[1:]):
        assert a0 < b0 <= a1 - 3 + 1 and b0 < a1  # overlap of at least... the stride, advancing every time


def test_bad_stride():
    tdoc = tokenize_document("wagner group", TOK)
    with pytest.raises(ValueError, match="stride"):
        window_bounds(tdoc, 4, 4)


def test_pick_central_prefers_inner_positions():
    assert pick_central([(0, 10), (6, 16)], 16).tolist() == [0] * 8 + [1] * 8


def test_misaligned_span_is_reported(schema):
    doc = Document("d", "wagnergroup kyiv", (Span("a", 0, 6, "ARMED_GROUP"),))
    report = AlignmentReport()
    tok = word_tokenizer(["wagnergroup", "kyiv"])
    make_windows(doc, tok, max_length=8, stride=0, label2id=schema.label2id, report=report)
    assert len(report.misaligned) == 1 and "wagnergroup" in report.misaligned[0]


def test_entity_longer_than_overlap_is_counted(schema):
    text = " ".join(["the"] * 3 + ["wagner"] * 8 + ["the"] * 3)
    start = text.index("wagner")
    doc = Document("d", text, (Span("a", start, text.rindex("wagner") + 6, "ARMED_GROUP"),))
    report = AlignmentReport()
    make_windows(doc, TOK, max_length=7, stride=1, label2id=schema.label2id, report=report)
    assert len(report.lost) == 1 and sum(report.cut_by_window.values()) >= 2
