import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conflict_ie.alignment import (AlignmentReport, TokenizedDocument, Word, bio_constraints, decode_words,
                                   make_windows, pick_central, spans_from_word_tags, tokenize_document, viterbi,
                                   window_bounds, word_tags)
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
       all_tokens=st.booleans(), decoding=st.sampled_from(["argmax", "viterbi"]))
def test_spans_survive_labelstudio_windows_bio(doc, max_length, stride_frac, all_tokens, decoding, schema):
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
    tags, _ = decode_words(tdoc, bounds, probs, schema.id2label, decoding=decoding,
                           word_probs="mean" if all_tokens else "first")
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


ID2LABEL = {0: "O", 1: "B-A", 2: "I-A", 3: "B-B", 4: "I-B"}


def _valid_bio(tags):
    prev = "O"
    for t in tags:
        if t.startswith("I-") and (prev == "O" or prev[2:] != t[2:]):
            return False
        prev = t
    return True


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.floats(0.001, 1.0), min_size=5, max_size=5), min_size=1, max_size=12))
def test_viterbi_is_well_formed_and_best(rows):
    probs = np.array(rows) / np.array(rows).sum(1, keepdims=True)
    allowed, first = bio_constraints(ID2LABEL)
    path = viterbi(probs, allowed, first)
    tags = [ID2LABEL[i] for i in path]
    assert _valid_bio(tags)
    greedy = [ID2LABEL[i] for i in probs.argmax(1)]
    if _valid_bio(greedy):  # nothing to repair: the argmax is the best sequence
        assert np.allclose(np.log(probs[np.arange(len(path)), path]).sum(),
                           np.log(probs.max(1)).sum())
    # No well-formed sequence beats it (brute force over short inputs).
    if len(rows) <= 5:
        import itertools
        best = max(np.log(probs[np.arange(len(rows)), list(seq)]).sum()
                   for seq in itertools.product(range(5), repeat=len(rows)) if _valid_bio([ID2LABEL[i] for i in seq]))
        assert np.isclose(np.log(probs[np.arange(len(path)), path]).sum(), best)


def test_viterbi_repairs_what_argmax_breaks():
    probs = np.array([[0.1, 0.5, 0.0, 0.4, 0.0],    # B-A, just
                      [0.1, 0.0, 0.3, 0.0, 0.6]])   # I-B after B-A is ill-formed
    tags, scores = decode_words(TokenizedDocument([1, 2], [(0, 3), (4, 7)], [Word(0, 3, 0, 0), Word(4, 7, 1, 1)],
                                                  [0, 1]), [(0, 2)], [probs], ID2LABEL, decoding="viterbi")
    assert tags == ["B-B", "I-B"] and np.allclose(scores, [0.4, 0.6])
    argmax_tags, _ = decode_words(TokenizedDocument([1, 2], [(0, 3), (4, 7)], [Word(0, 3, 0, 0), Word(4, 7, 1, 1)],
                                                    [0, 1]), [(0, 2)], [probs], ID2LABEL, decoding="argmax")
    assert argmax_tags == ["B-A", "I-B"]


def test_mean_word_probs_read_every_subtoken_in_the_owning_window():
    # One word of three sub-tokens (0-2), then a one-token word (3); two windows overlap on tokens 2-3.
    tdoc = TokenizedDocument([1, 2, 3, 4], [(0, 2), (2, 4), (4, 6), (7, 9)], [Word(0, 6, 0, 2), Word(7, 9, 3, 3)],
                             [0, 0, 0, 1])
    o, b, i = np.eye(5)[0], np.eye(5)[1], np.eye(5)[2]
    first = np.array([0.4, 0.6, 0, 0, 0])  # first sub-token leans B-A; the others say O
    win0 = np.stack([first, o, o])          # tokens 0-2: the word's first token is most central here
    win1 = np.stack([b, i])                 # tokens 2-3: would say B-A/I-A for token 2, but it is not the owner
    bounds = [(0, 3), (2, 4)]
    tags, _ = decode_words(tdoc, bounds, [win0, win1], ID2LABEL, word_probs="first")
    assert tags[0] == "B-A"
    tags, scores = decode_words(tdoc, bounds, [win0, win1], ID2LABEL, word_probs="mean")
    assert tags[0] == "O" and np.isclose(scores[0], (0.4 + 1 + 1) / 3)
    with pytest.raises(ValueError):
        decode_words(tdoc, bounds, [win0, win1], ID2LABEL, word_probs="max")
