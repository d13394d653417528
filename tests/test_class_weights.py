"""``ner.class_weight_power``: per-tag loss weights for the rare labels, through the Trainer's
``compute_loss_func`` hook."""

import pytest
import torch

from conflict_ie.training import tag_weights, weighted_token_loss


def test_weights_grow_as_tags_get_rarer():
    labels = [[0] * 40 + [1] * 10 + [2] * 2 + [-100] * 5]
    w = tag_weights(labels, 4, 0.5)
    assert w[0] == 1.0 and w[0] < w[1] < w[2]
    assert w[2] == pytest.approx((40 / 2) ** 0.5)
    assert w[3] == w[2]  # never seen: the largest weight of those seen
    assert torch.equal(tag_weights(labels, 4, 0.0), torch.ones(4))


def test_equal_weights_give_the_models_own_loss():
    """With every weight 1 the loss is the mean token cross-entropy over labelled tokens, what the
    model computes itself; so only the weights change training."""
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 5)
    labels = torch.randint(0, 5, (3, 7))
    labels[0, :2] = -100
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), labels.reshape(-1), ignore_index=-100)
    got = weighted_token_loss(torch.ones(5))({"logits": logits}, labels)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    # The Trainer passes the accumulated batch's labelled-token count: the sum is divided by it.
    n = int((labels != -100).sum())
    half = weighted_token_loss(torch.ones(5))({"logits": logits}, labels, num_items_in_batch=2 * n)
    assert half.item() == pytest.approx(want.item() / 2, rel=1e-6)


def test_a_weighted_run_trains_with_the_weights(tmp_path, schema):
    from conflict_ie.config import TrainConfig
    from conflict_ie.corpus import build_corpus
    from conflict_ie.markup import parse_markup
    from conflict_ie.training import train_ner
    from conftest import distinct_body
    from tiny import tiny_base_model

    docs = [parse_markup(distinct_body(i), schema, doc_id=f"d{i}") for i in range(6)]
    base = tiny_base_model(tmp_path / "base", [d.text for d in docs], hidden=16, layers=1)
    corpus = build_corpus({"train": docs[:4], "validation": docs[4:], "test": []}, schema)
    config = TrainConfig.from_dict({"base_model": str(base), "ner": {
        "max_length": 16, "stride": 4, "learning_rate": 0.05, "epochs": 1, "batch_size": 4,
        "class_weight_power": 0.5, "logging_steps": 1}})
    trainer, _ = train_ner(config, corpus, schema, tmp_path / "run")
    assert trainer.compute_loss_func is not None
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses and all(torch.isfinite(torch.tensor(float(x))) for x in losses)
    plain, _ = train_ner(TrainConfig.from_dict({**config.to_dict(), "ner": {**config.to_dict()["ner"],
                                                                            "class_weight_power": 0.0}}),
                         corpus, schema, tmp_path / "plain")
    assert plain.compute_loss_func is None
