"""``scripts/experiment_joint_encoder.py`` on the tiny trained run: the pair head reads each
sub-token's state from its most central window (as entity decoding does), the entity part of the
loss is the token classifier's own, and the run's column is what the package scores."""

import json

import pytest
import torch
from conftest import load_script

from conflict_ie.corpus import documents_of, load_corpus
from conflict_ie.predictor import Predictor


@pytest.fixture(scope="module")
def script():
    return load_script("experiment_joint_encoder")


def _joint(script, run, schema):
    from transformers import AutoModelForTokenClassification

    ner = AutoModelForTokenClassification.from_pretrained(run, use_safetensors=True)
    return script.make_joint_model(ner, len(schema.entity_labels), len(schema.relation_labels), 4, 8, 0.0).eval()


def test_stitched_states_are_each_token_from_its_most_central_window(script, world, schema):
    tmp, _ = world
    pred = Predictor.from_pretrained(tmp / "run", relations=False)
    text = " ".join(["Wagner Group fighters killed 12 villagers in Bakhmut."] * 8)
    from conflict_ie.documents import Document

    doc = Document("x", text, ())
    w = script.document_windows(doc, pred.tokenizer, pred)
    assert len(w["ids"]) > 3  # many windows
    model = _joint(script, tmp / "run", schema)
    with torch.inference_mode():
        _, states = model.read(w)
    # The shared-encoder experiment's states (tested against a plain encoder pass) at the last layer.
    shared = load_script("experiment_shared_encoder")
    (offsets, want), = shared.token_states(pred, [text], (pred.model.config.num_hidden_layers,))
    assert states.shape == want.shape and len(offsets) == len(w["offsets"])
    assert abs(states.numpy() - want).max() < 1e-5


def test_the_entity_loss_is_the_token_classifiers_own(script, world, schema):
    tmp, _ = world
    run = tmp / "run"
    corpus, _ = load_corpus(run / "corpus")
    doc = documents_of(corpus["train"], schema)[0]
    pred = Predictor.from_pretrained(run, relations=False)
    w = script.document_windows(doc, pred.tokenizer, pred, schema)
    assert (w["labels"] != -100).any()
    model = _joint(script, run, schema)
    empty = {k: torch.zeros(0, dtype=torch.long) for k in ("ha", "a")}
    with torch.inference_mode():
        got = script.joint_loss(model, {"windows": w, "pairs": empty, "attrs": empty})
        want = model.ner(input_ids=w["ids"], attention_mask=w["mask"], labels=w["labels"]).loss
    assert float(got) == pytest.approx(float(want), rel=1e-5)


def test_pairs_and_casualty_types_add_their_losses(script, world, schema):
    tmp, _ = world
    run = tmp / "run"
    corpus, _ = load_corpus(run / "corpus")
    from conflict_ie.relation_data import gold_label_sets
    from conflict_ie.relation_inference import RelationExtractor

    enc = RelationExtractor.from_pretrained(run / "relations", schema=schema).encoder
    doc = next(d for d in documents_of(corpus["train"], schema) if d.relations)
    pred = Predictor.from_pretrained(run, relations=False)
    w = script.document_windows(doc, pred.tokenizer, pred, schema)
    label_index = {lab: i for i, lab in enumerate(schema.entity_labels)}
    pairs = script.pair_table(doc.text, list(doc.spans), w["offsets"], enc, schema, label_index,
                              gold_label_sets(doc, schema))
    attrs = script.attribute_table(doc, w["offsets"], enc.attributes[0])
    assert pairs["y"].sum() >= 1 and len(attrs["a"]) == 1
    model = _joint(script, run, schema)
    empty = {k: torch.zeros(0, dtype=torch.long) for k in ("ha", "a")}
    with torch.inference_mode():
        tags = float(script.joint_loss(model, {"windows": w, "pairs": empty, "attrs": empty}))
        both = float(script.joint_loss(model, {"windows": w, "pairs": pairs, "attrs": empty}))
        _, states = model.read(w)
        from conflict_ie.relation_model import relation_loss

        rel = float(relation_loss(model.pair_logits(states, pairs), pairs["y"], pairs["m"]))
        all3 = float(script.joint_loss(model, {"windows": w, "pairs": pairs, "attrs": attrs}))
        attr = float(torch.nn.functional.cross_entropy(model.attr_logits(states, attrs), attrs["y"]))
    assert both == pytest.approx(tags + rel, rel=1e-5)
    assert all3 == pytest.approx(tags + rel + attr, rel=1e-5)


def test_the_run_column_is_what_the_package_scores(script, world, schema, tmp_path):
    tmp, _ = world
    run = tmp / "run"
    out = tmp_path / "r.json"
    assert script.main(["--model", str(run), "--seeds", "1", "--epochs", "1", "--no-re3d", "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    from conflict_ie.report import relation_report

    corpus, _ = load_corpus(run / "corpus")
    docs = documents_of(corpus["test"], schema)
    full = Predictor.from_pretrained(run)
    spans = [[s for s, _ in o.spans] for o in full.ner([d.text for d in docs])]
    metrics, _ = relation_report(full.relation_model, docs, spans)
    assert got["run"]["test"]["end_to_end"] == pytest.approx(metrics["relations"]["end_to_end"]["micro"]["f1"])
    row, = got["joint"]
    assert row["seed"] == 1 and len(row["curve"]) == 1
    for name in ("validation", "test"):
        assert all(v is None or 0.0 <= v <= 1.0 for v in row[name].values())


def test_negatives_are_sampled_per_positive_as_the_run_says(script):
    import random

    y = torch.tensor([[1.0], [0.0], [0.0], [0.0], [0.0], [1.0], [0.0], [0.0]])
    pairs = {"ha": torch.arange(8), "y": y, "m": torch.ones(8, 1), "rows": list(range(8))}
    one = script.sample_negatives(pairs, 1.0, random.Random(0))
    assert one["y"].sum() == 2 and len(one["ha"]) == 4  # both positives and two negatives
    assert one["rows"] == one["ha"].tolist()  # the rows stay with their pairs
    assert len(script.sample_negatives(pairs, -1.0, random.Random(0))["ha"]) == 8
    assert len(script.sample_negatives(pairs, 10.0, random.Random(0))["ha"]) == 8
