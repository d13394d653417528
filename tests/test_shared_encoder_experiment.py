"""``scripts/experiment_shared_encoder.py`` on the tiny trained run: the entity states it reads are
the encoder's own, and the shipped relation model's column is what the full Predictor scores."""

import json

import pytest
import torch
from conftest import load_script

from conflict_ie.corpus import documents_of, load_corpus
from conflict_ie.documents import Span
from conflict_ie.evaluation import gold_relation_keys, relation_key, relation_scores
from conflict_ie.predictor import Predictor



@pytest.fixture(scope="module")
def script():
    return load_script("experiment_shared_encoder")


def test_states_of_a_short_text_are_one_encoder_pass(script, world):
    tmp, _ = world
    pred = Predictor.from_pretrained(tmp / "run", relations=False)
    text = "Kyiv was hit."
    (offsets, states), = script.token_states(pred, [text], (1, 2))
    ids = pred.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        hs = pred.model.base_model(**ids, output_hidden_states=True).hidden_states
    want = ((hs[1] + hs[2]) / 2)[0, 1:-1].numpy()  # without [CLS] and [SEP]
    assert states.shape == want.shape and len(offsets) == len(want)
    assert abs(states - want).max() < 1e-5


def test_every_token_of_a_long_text_gets_a_state(script, world):
    tmp, _ = world
    pred = Predictor.from_pretrained(tmp / "run", relations=False)
    text = " ".join(["Shelling hit Kyiv and Kharkiv overnight."] * 12)
    (offsets, states), = script.token_states(pred, [text], (2,))
    assert len(offsets) > 3 * pred.max_length  # many windows
    assert (abs(states).sum(1) > 0).all()


def test_the_shipped_column_is_what_the_full_predictor_scores(script, world, tmp_path):
    tmp, _ = world
    run = tmp / "run"
    out = tmp_path / "r.json"
    assert script.main(["--model", str(run), "--seeds", "1", "2", "--epochs", "2", "--layers", "1", "2",
                        "--no-re3d", "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    corpus, schema = load_corpus(run / "corpus")
    docs = documents_of(corpus["test"], schema)
    symmetric = {r.label for r in schema.relations if r.symmetric}
    full = Predictor.from_pretrained(run).predict_batch([d.text for d in docs])
    pred = {relation_key(d.id, Span(r.head.id, r.head.start, r.head.end, r.head.label),
                         Span(r.tail.id, r.tail.start, r.tail.end, r.tail.label), r.label, symmetric)
            for d, p in zip(docs, full) for r in p.relations}
    gold = set().union(*(gold_relation_keys(d, symmetric) for d in docs))
    want = relation_scores(gold, pred, schema.relation_labels)["micro"]["f1"]
    assert got["shipped"]["test"]["end_to_end"] == pytest.approx(want)
    assert [r["seed"] for r in got["pair_mlp"]] == [1, 2]
    for row in got["pair_mlp"]:
        for name in ("validation", "test"):
            assert all(0.0 <= v <= 1.0 for v in row[name].values())
    assert "re3d validation" not in got["shipped"]
