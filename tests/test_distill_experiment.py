"""``scripts/experiment_distill_relations.py`` on the tiny trained run: the targets mix gold and
teacher as the weight says, the teacher-initialised student holds the teacher's weights, and the
whole script trains and scores a shallower student that the shipped extractor reads."""

import json

import pytest
import torch
from conftest import load_script

from conflict_ie.corpus import documents_of, load_corpus
from conflict_ie.relation_data import RelationEncoder, training_rows
from conflict_ie.relation_inference import RelationExtractor
from conflict_ie.relation_model import RelationModel



@pytest.fixture(scope="module")
def script():
    return load_script("experiment_distill_relations")


@pytest.fixture(scope="module")
def rows_and_teacher(world):
    tmp, _ = world
    corpus, schema = load_corpus(tmp / "run" / "corpus")
    rx = RelationExtractor.from_pretrained(tmp / "run" / "relations", schema=schema)
    enc = RelationEncoder(rx.encoder.tokenizer, schema, 48, 1, 80, attributes=schema.attributes, max_pairs=4)
    rows, _ = training_rows(documents_of(corpus["train"], schema), enc, negative_ratio=-1, seed=1)
    return rows, rx.model, rx.encoder.tokenizer, schema


def test_teacher_targets_are_the_teachers_own_probabilities(script, rows_and_teacher):
    from conflict_ie.relation_data import RelationCollator

    rows, teacher, tok, _ = rows_and_teacher
    script.teacher_targets(teacher, rows, tok.pad_token_id, batch_size=3)
    row = next(r for r in rows if r["pairs"] and r["attrs"])
    b = RelationCollator(tok.pad_token_id)([row])
    with torch.inference_mode():
        out = teacher(b["input_ids"], b["attention_mask"], b["position_ids"], b["pair_index"], b["attr_index"],
                      pair_between=b["pair_between"])
    assert torch.allclose(torch.tensor(row["teacher_rel"]), torch.sigmoid(out["relation_logits"]), atol=1e-5)
    k = row["attrs"][0][1]
    assert torch.allclose(torch.tensor(row["teacher_attr"][0]), torch.softmax(out["attribute_logits"][k][0], -1),
                          atol=1e-5)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_targets_mix_gold_and_teacher_by_the_weight(script, rows_and_teacher, weight):
    from conflict_ie.relation_data import RelationCollator

    rows, teacher, tok, schema = rows_and_teacher
    script.teacher_targets(teacher, rows, tok.pad_token_id)
    chunk = [r for r in rows if r["attrs"]][:2] + [r for r in rows if r["pairs"]][:2]
    gold = RelationCollator(tok.pad_token_id, len(schema.relation_labels))(chunk)
    n_choices = max(len(a.choices) for a in schema.attributes)
    b = script.DistillCollator(tok.pad_token_id, len(schema.relation_labels), weight, n_choices)(chunk)
    soft = torch.tensor([p for r in chunk for p in r["teacher_rel"]])
    assert torch.allclose(b["rel_labels"], (1 - weight) * gold["rel_labels"] + weight * soft)
    assert torch.equal(b["rel_mask"], gold["rel_mask"])
    hard = torch.nn.functional.one_hot(gold["attr_label"], n_choices).float()
    teach = torch.tensor([p for r in chunk for p in r["teacher_attr"]])
    teach = torch.nn.functional.pad(teach, (0, n_choices - teach.shape[1]))
    assert torch.allclose(b["attr_target"], (1 - weight) * hard + weight * teach)
    assert torch.allclose(b["attr_target"].sum(-1), torch.ones(len(hard)))


def test_the_teacher_initialised_student_holds_the_teachers_weights(script, rows_and_teacher):
    _, teacher, _, _ = rows_and_teacher
    student = script.student_from_teacher(teacher, 1)
    assert len(student.encoder.encoder.layer) == 1 and len(teacher.encoder.encoder.layer) == 2
    mine, theirs = student.state_dict(), teacher.state_dict()
    assert mine.keys() <= theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert any(k.startswith("relation_head") for k in mine) and any(".layer.0." in k for k in mine)


@pytest.mark.parametrize("init", ["base", "teacher"])
def test_the_script_trains_and_scores_a_shallower_student(script, world, tmp_path, init):
    tmp, _ = world
    out = tmp_path / "distilled.json"
    assert script.main(["--run", str(tmp / "run"), "--seeds", "1", "--split", "test", "--init", init,
                        "--set", "relations.encoder_layers=1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["init"] == init and res["weight"] == 0.5
    assert set(res["summary"]) >= {"test.gold_f1", "test.e2e_f1", "train_seconds_mean"}
    assert res["teacher_scores"]["test"]["gold_f1"] is not None
    assert res["seeds"]["1"]["train_stats"]["teacher_seconds"] >= 0


def test_a_student_at_full_depth_is_refused(script, world, tmp_path):
    tmp, _ = world
    with pytest.raises(SystemExit, match="encoder_layers"):
        script.main(["--run", str(tmp / "run"), "--out", str(tmp_path / "x.json")])


def test_the_saved_student_loads_as_a_plain_relation_model(script, world, tmp_path):
    tmp, _ = world
    corpus, schema = load_corpus(tmp / "run" / "corpus")
    from conflict_ie.config import TrainConfig

    cfg = TrainConfig.load(tmp / "run" / "train_config.yaml", ["relations.encoder_layers=1", "relations.epochs=1"])
    script.train_student(cfg, corpus, schema, tmp / "run" / "relations", tmp_path / "rel", weight=0.5, init="base")
    model = RelationModel.from_pretrained(tmp_path / "rel", use_safetensors=True)
    assert type(model) is RelationModel and model.config.encoder.num_hidden_layers == 1


def test_the_teachers_share_reaches_the_students_training(script, world, tmp_path):
    tmp, _ = world
    corpus, schema = load_corpus(tmp / "run" / "corpus")
    from conflict_ie.config import TrainConfig

    cfg = TrainConfig.load(tmp / "run" / "train_config.yaml", ["relations.encoder_layers=1", "relations.epochs=1"])
    weights = {}
    for w in (0.0, 1.0):
        script.train_student(cfg, corpus, schema, tmp / "run" / "relations", tmp_path / str(w), weight=w, init="base")
        weights[w] = RelationModel.from_pretrained(tmp_path / str(w), use_safetensors=True).relation_head.weight
    assert not torch.allclose(weights[0.0], weights[1.0])


def test_the_gap_is_how_far_the_teacher_is_from_gold_on_the_learned_labels(script):
    rows = [{"rel_labels": [[1.0, 0.0]], "rel_mask": [[1.0, 0.0]], "teacher_rel": [[0.75, 0.9]]},
            {"rel_labels": [[0.0, 0.0]], "rel_mask": [[1.0, 1.0]], "teacher_rel": [[0.0, 0.5]]}]
    assert script.teacher_gap(rows) == pytest.approx((0.25 + 0.0 + 0.5) / 3)


def test_gap_mode_trains_nothing_and_reads_the_temperature(script, world, capsys, monkeypatch):
    tmp, _ = world
    monkeypatch.setattr(script, "train_student", lambda *a, **k: pytest.fail("--gap trains nothing"))
    assert script.main(["--run", str(tmp / "run"), "--set", "relations.encoder_layers=1", "--gap", "1", "1e9",
                        "--out", "unused.json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(g["split"], g["temperature"]) for g in lines] == [("train", 1.0), ("train", 1e9), ("validation", 1.0),
                                                              ("validation", 1e9)]
    # At a huge temperature every probability is 0.5, so the gap from 0/1 gold labels is 0.5 exactly.
    assert lines[1]["teacher_gap"] == lines[3]["teacher_gap"] == 0.5
    assert 0 <= lines[0]["teacher_gap"] < 1 and lines[0]["teacher_gap"] != 0.5


def test_a_missing_teacher_is_trained_at_full_depth_with_the_config_files_settings(script, world, tmp_path,
                                                                                   monkeypatch):
    import shutil

    from conflict_ie import training

    tmp, _ = world
    run = tmp_path / "run"
    shutil.copytree(tmp / "run", run, ignore=shutil.ignore_patterns("relations", "checkpoints"))
    seen, original = [], training.train_relations
    monkeypatch.setattr(training, "train_relations", lambda c, *a, **k: seen.append(
        (c.seed, c.relations.encoder_layers, c.relations.epochs)) or original(c, *a, **k))
    assert script.main(["--run", str(run), "--seeds", "2", "--split", "test", "--set", "relations.encoder_layers=1",
                        "--set", "relations.epochs=1", "--out", str(tmp_path / "d.json")]) == 0
    own = training.TrainConfig.load(run / "train_config.yaml").relations.epochs
    assert seen == [(1, 0, own)] and own != 1
    assert RelationModel.from_pretrained(run / "teacher", use_safetensors=True).config.encoder.num_hidden_layers == 2
