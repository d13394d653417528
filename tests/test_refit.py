"""``refit: true``: validation picks the epoch, then both models train again on train+validation."""

import json

import pytest

from conflict_ie.config import TrainConfig
from conflict_ie.errors import ConfigError


@pytest.fixture(scope="module")
def corpus_and_base(tmp_path_factory, schema):
    from conflict_ie.corpus import build_corpus, save_corpus
    from conflict_ie.markup import parse_markup
    from conftest import BODIES, distinct_body
    from tiny import tiny_base_model

    tmp = tmp_path_factory.mktemp("refit")
    docs = [parse_markup(distinct_body(i), schema, doc_id=f"d{i}") for i in range(10)]
    corpus = build_corpus({"train": docs[:6], "validation": docs[6:8], "test": docs[8:]}, schema)
    return save_corpus(corpus, schema, tmp / "corpus"), tiny_base_model(tmp / "base", [d.text for d in docs]), tmp


def config(base, **extra):
    return TrainConfig.from_dict({
        "base_model": str(base), "seed": 3, **extra,
        "ner": {"max_length": 16, "stride": 4, "learning_rate": 0.05, "epochs": 4, "batch_size": 4,
                "logging_steps": 1},
        "relations": {"max_length": 48, "learning_rate": 0.01, "epochs": 1, "batch_size": 8}})


@pytest.fixture(scope="module")
def refit_run(corpus_and_base):
    from conflict_ie.run import train

    corpus, base, tmp = corpus_and_base
    return train(config(base, refit=True), corpus_dir=corpus, output_dir=tmp / "run")


def test_refit_trains_on_train_and_validation_up_to_the_chosen_epoch(refit_run):
    run = refit_run
    info = json.loads((run / "training_info.json").read_text())
    selection = json.loads((run / "log_history.json").read_text())
    evals = [e for e in selection if "eval_entity_f1" in e]
    best = max(evals, key=lambda e: e["eval_entity_f1"])  # the Trainer keeps the first of equal bests
    assert info["refit"]["epoch"] == best["epoch"]
    assert info["refit"]["train_documents"] == 8
    assert info["best_validation_entity_f1"] == best["eval_entity_f1"]
    refit_log = json.loads((run / "refit_log_history.json").read_text())
    assert not any("eval_entity_f1" in e for e in refit_log)  # no validation left to score
    assert refit_log[-1]["epoch"] == pytest.approx(best["epoch"])
    assert (run / "relations").is_dir() and (run / "metrics.json").exists()


def test_refit_card_says_what_the_validation_score_is(refit_run):
    from conflict_ie.publishing import render_card

    card = render_card(refit_run, "someone/re3d-tiny")
    assert "trained again\non train+validation (8 documents) up to epoch" in card


def test_refit_needs_validation_and_refuses_resume(corpus_and_base, tmp_path, schema):
    import datasets

    from conflict_ie.corpus import load_corpus, save_corpus
    from conflict_ie.run import train

    corpus, base, _ = corpus_and_base
    with pytest.raises(ConfigError, match="--resume is not supported with 'refit: true'"):
        train(config(base, refit=True), corpus_dir=corpus, output_dir=tmp_path / "a", resume=True)
    ds, _ = load_corpus(corpus)
    no_val = save_corpus(datasets.DatasetDict({**ds, "validation": ds["validation"].select([])}), schema,
                         tmp_path / "no-val")
    with pytest.raises(ConfigError, match="needs a validation split"):
        train(config(base, refit=True), corpus_dir=no_val, output_dir=tmp_path / "b")
