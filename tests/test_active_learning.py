"""Uncertainty scores on hand-built distributions, and on the tiny model's own probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from conflict_ie.active_learning import (STRATEGIES, confidences, document_confidence, rank_by_uncertainty,
                                         word_uncertainty)
from conflict_ie.errors import InputError
from conflict_ie.labelstudio_loop import is_annotated, predictions_of

CERTAIN = np.array([[1.0, 0.0, 0.0]])
UNIFORM = np.array([[1 / 3, 1 / 3, 1 / 3]])
TWO_WAY = np.array([[0.5, 0.5, 0.0]])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_bounds(strategy):
    assert word_uncertainty(CERTAIN, strategy).tolist() == [0.0]
    assert 0.0 <= word_uncertainty(UNIFORM, strategy)[0] <= 1.0
    assert document_confidence(np.zeros((0, 3)), strategy) == 1.0


def test_each_strategy_by_hand():
    # least confidence: 1 - max p
    assert word_uncertainty(UNIFORM, "least-confidence")[0] == pytest.approx(2 / 3)
    assert word_uncertainty(TWO_WAY, "least-confidence")[0] == pytest.approx(0.5)
    # margin: 1 - (p1 - p2): a tie between two tags is as uncertain as it gets
    assert word_uncertainty(TWO_WAY, "margin")[0] == pytest.approx(1.0)
    assert word_uncertainty(np.array([[0.7, 0.2, 0.1]]), "margin")[0] == pytest.approx(0.5)
    # entropy, normalised by log K: uniform is 1, a two-way tie over three tags is log 2 / log 3
    assert word_uncertainty(UNIFORM, "entropy")[0] == pytest.approx(1.0)
    assert word_uncertainty(TWO_WAY, "entropy")[0] == pytest.approx(np.log(2) / np.log(3))


def test_document_confidence_is_one_minus_the_mean():
    probs = np.vstack([CERTAIN, UNIFORM, CERTAIN, CERTAIN])
    assert document_confidence(probs, "least-confidence") == pytest.approx(1 - (2 / 3) / 4)
    # The mean, not the sum: the same words twice over are as certain.
    assert document_confidence(np.vstack([probs, probs])) == pytest.approx(document_confidence(probs))


def test_ranking_puts_the_least_certain_first():
    docs = {"sure": np.vstack([CERTAIN] * 5), "torn": np.vstack([TWO_WAY] * 5), "mixed": np.vstack([CERTAIN, UNIFORM])}
    for strategy in STRATEGIES:
        scores = [document_confidence(p, strategy) for p in docs.values()]
        assert rank_by_uncertainty(list(docs), scores)[-1] == "sure"
    assert rank_by_uncertainty(["a", "b"], [0.5, 0.5]) == ["a", "b"]  # ties keep their order


def test_unknown_strategy_is_an_input_error():
    with pytest.raises(InputError, match="least-confidence, entropy, margin"):
        word_uncertainty(CERTAIN, "random")


def test_confidences_from_the_tiny_model(world):
    from conflict_ie.predictor import Predictor

    predictor = Predictor.from_pretrained(world[0] / "run", progress=False)
    texts = ["Wagner Group fighters killed 12 villagers in Bakhmut.", "", "zzz qqq unknown words entirely"]
    outs = predictor.ner(texts)
    assert outs[0].word_probs.shape == (len(outs[0].tdoc.words), len(predictor.id2label))
    assert np.allclose(outs[0].word_probs.sum(-1), 1.0, atol=1e-5)
    # The decoded score of a word is one of its probabilities.
    assert np.allclose(outs[0].word_probs.max(-1) >= outs[0].word_scores - 1e-6, True)
    for strategy in STRATEGIES:
        got = confidences(predictor, texts, strategy)
        assert got[1] == 1.0 and all(0.0 <= c <= 1.0 for c in got)
        assert got[0] == pytest.approx(document_confidence(outs[0].word_probs, strategy))


def test_which_tasks_count_as_annotated_and_predicted():
    assert not is_annotated({"annotations": []}) and not is_annotated({})
    assert not is_annotated({"annotations": [{"was_cancelled": True, "result": []}]})  # skipped
    assert is_annotated({"annotations": [{"was_cancelled": True}, {"was_cancelled": False, "result": [1]}]})
    task = {"predictions": [{"id": 1, "model_version": "a"}, {"id": 2, "model_version": "b"}, 7]}
    assert [p["id"] for p in predictions_of(task, "b")] == [2] and predictions_of({}, "a") == []
