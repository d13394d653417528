"""The pure parts of scripts/probe_re3d.py: what its decoding and casing probes compute.

The probes themselves train on re3d (minutes each) and are not run here; these checks make sure
that a negative result on the page is not the product of a broken helper.
"""

import importlib.util
import itertools
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from conflict_ie.alignment import bio_constraints, decode_words, TokenizedDocument, viterbi, Word
from conflict_ie.documents import Span


def _load_probe():
    spec = importlib.util.spec_from_file_location("probe_re3d", ROOT / "scripts" / "probe_re3d.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


probe = _load_probe()
ID2LABEL = {0: "O", 1: "B-A", 2: "I-A", 3: "B-B", 4: "I-B"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}


def _well_formed(path):
    allowed, first = bio_constraints(ID2LABEL)
    return bool(first[path[0]]) and all(allowed[a, b] for a, b in zip(path, path[1:]))


def test_bigram_table_counts_training_tags_with_add_one():
    table = probe.tag_bigram_log_probs([["O", "B-A", "I-A", "O"], ["B-A", "O"]], LABEL2ID)
    probs = np.exp(table)
    assert np.allclose(probs.sum(1), 1.0)
    # After B-A: I-A once and O once, plus one for each of the 5 tags -> (1+1)/(2+5) each.
    assert np.isclose(probs[LABEL2ID["B-A"], LABEL2ID["I-A"]], 2 / 7)
    assert np.isclose(probs[LABEL2ID["B-A"], LABEL2ID["B-B"]], 1 / 7)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.floats(0.001, 1.0), min_size=5, max_size=5), min_size=1, max_size=4),
       st.floats(0.0, 2.0))
def test_viterbi_with_prior_is_the_best_well_formed_sequence(rows, weight):
    probs = np.array(rows) / np.array(rows).sum(1, keepdims=True)
    transitions = probe.tag_bigram_log_probs([["O", "B-A", "I-A", "O", "B-B", "O"]], LABEL2ID)
    path = probe.viterbi_with_prior(transitions, weight)(probs, *bio_constraints(ID2LABEL)).tolist()
    assert _well_formed(path)

    def score(seq):
        return np.log(probs[np.arange(len(seq)), list(seq)]).sum() + weight * sum(
            transitions[a, b] for a, b in zip(seq, seq[1:]))

    best = max(score(seq) for seq in itertools.product(range(5), repeat=len(rows)) if _well_formed(seq))
    assert np.isclose(score(path), best)
    if weight == 0.0:
        assert path == viterbi(probs, *bio_constraints(ID2LABEL)).tolist()


def test_decoding_with_swaps_the_package_viterbi_and_restores_it():
    import conflict_ie.alignment as alignment

    tdoc = TokenizedDocument([1, 2], [(0, 3), (4, 7)], [Word(0, 3, 0, 0), Word(4, 7, 1, 1)], [0, 1])
    probs = np.array([[0.1, 0.5, 0.0, 0.4, 0.0], [0.5, 0.0, 0.1, 0.0, 0.4]])
    # Without a prior, B-A O is the best sequence; a strong prior against O after B-A makes it B-B O.
    prior = np.zeros((5, 5))
    prior[LABEL2ID["B-A"], LABEL2ID["O"]] = -5.0
    with probe.decoding_with(probe.viterbi_with_prior(prior, 1.0)):
        tags, _ = decode_words(tdoc, [(0, 2)], [probs], ID2LABEL, decoding="viterbi")
    plain, _ = decode_words(tdoc, [(0, 2)], [probs], ID2LABEL, decoding="viterbi")
    assert plain == ["B-A", "O"] and tags == ["B-B", "O"]
    assert alignment.viterbi is viterbi


def test_label_voting_keeps_offsets_and_takes_the_majority():
    text = "Aden and Aden and Aden, not Sanaa."
    spans = [Span("a", 0, 4, "Org"), Span("b", 9, 13, "Loc"), Span("c", 18, 22, "Loc"), Span("d", 28, 33, "Org")]
    voted = probe.vote_labels(text, spans)
    assert [(s.start, s.end, s.label) for s in voted] == [(0, 4, "Loc"), (9, 13, "Loc"), (18, 22, "Loc"),
                                                         (28, 33, "Org")]


def test_word_casing_classes():
    assert [probe.word_casing(w) for w in ("the", "Raqqa", "SDF", "U.S.", "I", "3rd", "", "iPhone")] == \
        [0, 1, 2, 2, 1, 0, 0, 0]
