"""``relations.encoder_layers``: a relation model on the first layers of its base encoder."""

import pytest
import torch
from transformers import AutoModel

from conflict_ie.config import TrainConfig
from conflict_ie.errors import ConfigError
from conflict_ie.relation_model import RelationModel
from tiny import tiny_base_model

TEXTS = ["Rebels attacked the town.", "Troops fought back."]


def test_the_first_layers_of_the_base_are_kept_and_saved(tmp_path):
    base = tiny_base_model(tmp_path / "base", TEXTS, layers=3)
    full = AutoModel.from_pretrained(base)
    model = RelationModel.from_encoder(str(base), full.config.vocab_size, encoder_layers=2, relation_labels=["X"])
    assert model.config.encoder.num_hidden_layers == 2 and len(model.encoder.encoder.layer) == 2
    for mine, theirs in zip(model.encoder.encoder.layer, full.encoder.layer):
        for (name, a), (_, b) in zip(mine.named_parameters(), theirs.named_parameters()):
            assert torch.equal(a, b), name  # the pretrained weights, not a fresh initialisation
    model.save_pretrained(tmp_path / "rel")
    again = RelationModel.from_pretrained(tmp_path / "rel").eval()
    assert len(again.encoder.encoder.layer) == 2
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        want = model.eval().encoder(input_ids=ids).last_hidden_state
        assert torch.allclose(again.encoder(input_ids=ids).last_hidden_state, want)


def test_zero_keeps_every_layer(tmp_path):
    base = tiny_base_model(tmp_path / "base", TEXTS, layers=3)
    model = RelationModel.from_encoder(str(base), 40, relation_labels=["X"])
    assert len(model.encoder.encoder.layer) == 3


def test_more_layers_than_the_base_has_is_refused(tmp_path):
    base = tiny_base_model(tmp_path / "base", TEXTS, layers=2)
    with pytest.raises(ConfigError, match=r"encoder_layers is 3, but the base model .* has 2 layers"):
        RelationModel.from_encoder(str(base), 40, encoder_layers=3, relation_labels=["X"])


def test_config_reads_and_checks_encoder_layers(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("relations:\n  encoder_layers: 3\n")
    assert TrainConfig.load(p).relations.encoder_layers == 3
    assert TrainConfig.load(p, ["relations.encoder_layers=0"]).relations.encoder_layers == 0
    with pytest.raises(ConfigError, match=r"relations.encoder_layers is 0 \(all layers\) or a number of layers"):
        TrainConfig.load(p, ["relations.encoder_layers=-1"])


def test_training_uses_the_configured_depth(world):
    from dataclasses import replace

    from conflict_ie.corpus import load_corpus
    from conflict_ie.training import train_relations

    tmp, _ = world
    run = tmp / "run"
    config = TrainConfig.load(run / "train_config.yaml")
    assert AutoModel.from_pretrained(config.base_model).config.num_hidden_layers == 2
    config = replace(config, relations=replace(config.relations, encoder_layers=1, epochs=1.0))
    corpus, schema = load_corpus(run / "corpus")
    train_relations(config, corpus, schema, tmp / "rel-1-layer")
    assert len(RelationModel.from_pretrained(tmp / "rel-1-layer").encoder.encoder.layer) == 1
