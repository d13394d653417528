import dataclasses

import pytest

from conflict_ie.config import TrainConfig, resolve_base_model
from conflict_ie.errors import ConfigError
from conftest import ROOT


def test_shipped_configs_load():
    paths = sorted((ROOT / "configs" / "train").glob("*.yaml"))
    assert paths, "no training config found under configs/train"  # else the loop below would test nothing
    for path in paths:
        assert isinstance(TrainConfig.load(path), TrainConfig)


def test_unknown_key_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("ner:\n  warmup_ratio: 0.1\n")
    with pytest.raises(ConfigError, match=r"ner: unknown key\(s\) \['warmup_ratio'\]"):
        TrainConfig.load(p)


def test_types_converted_once(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("ner:\n  learning_rate: 1e-4\n  epochs: 3\n  report_to: tensorboard\n")
    cfg = TrainConfig.load(p, ["ner.batch_size=8", "relations.enabled=false"])
    assert cfg.ner.learning_rate == 1e-4 and isinstance(cfg.ner.epochs, float)
    assert cfg.ner.report_to == ("tensorboard",) and cfg.ner.batch_size == 8 and cfg.relations.enabled is False


def test_bad_type_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("ner:\n  batch_size: many\n")
    with pytest.raises(ConfigError, match=r"ner.batch_size: expected int, got 'many'"):
        TrainConfig.load(p)


def test_frozen_and_round_trip(tmp_path):
    cfg = TrainConfig.from_dict({"seed": 7, "ner": {"epochs": 2}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 8
    cfg.save(tmp_path / "r.yaml")
    again = TrainConfig.load(tmp_path / "r.yaml")
    assert again == cfg and (again.seed, again.ner.epochs) == (7, 2.0)


def test_alias_resolves_to_installed_package():
    try:
        path = resolve_base_model("minilm-l6-offline")
    except ConfigError as exc:
        pytest.skip(str(exc))
    assert path.endswith("model")
    assert resolve_base_model("org/model") == "org/model"


def test_choice_keys_list_their_choices():
    assert TrainConfig.from_dict({"ner": {"decoding": "argmax"}}).ner.decoding == "argmax"
    with pytest.raises(ConfigError, match=r"ner.decoding: expected one of \['viterbi', 'argmax'\], got 'crf'"):
        TrainConfig.from_dict({"ner": {"decoding": "crf"}})
