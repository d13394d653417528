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


def _students(world, tmp_path, script, settings: dict) -> dict:
    """One-layer students trained for one epoch on the tiny run, one per ``settings`` entry
    (``train_student`` keywords), loaded back as saved: ``{name: RelationModel}``."""
    from conflict_ie.config import TrainConfig

    tmp, _ = world
    corpus, schema = load_corpus(tmp / "run" / "corpus")
    cfg = TrainConfig.load(tmp / "run" / "train_config.yaml", ["relations.encoder_layers=1", "relations.epochs=1"])
    out = {}
    for name, kwargs in settings.items():
        script.train_student(cfg, corpus, schema, tmp / "run" / "relations", tmp_path / name, init="base", **kwargs)
        out[name] = RelationModel.from_pretrained(tmp_path / name, use_safetensors=True)
    return out


def test_the_teachers_share_reaches_the_students_training(script, world, tmp_path):
    models = _students(world, tmp_path, script, {"gold": {"weight": 0.0}, "teacher": {"weight": 1.0}})
    assert not torch.allclose(models["gold"].relation_head.weight, models["teacher"].relation_head.weight)


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


def test_folds_deal_documents_evenly_and_the_same_way_each_time(script):
    folds = script.document_folds(10, 3)
    assert folds == script.document_folds(10, 3)
    assert sorted(folds.count(f) for f in range(3)) == [3, 3, 4]
    assert folds != sorted(folds)  # shuffled, so a fold is not one stretch of the corpus
    for bad in (1, 11):
        with pytest.raises(ValueError, match="folds"):
            script.document_folds(10, bad)


def test_tagged_rows_are_the_shipped_rows_each_with_its_document(script, world):
    tmp, _ = world
    corpus, schema = load_corpus(tmp / "run" / "corpus")
    tok = RelationExtractor.from_pretrained(tmp / "run" / "relations", schema=schema).encoder.tokenizer
    docs = documents_of(corpus["train"], schema)
    args = (tok, schema, 48, 1, 80)
    tagging = script.DocumentTaggingEncoder(*args, attributes=schema.attributes, max_pairs=4)
    tagged, _ = training_rows(docs, tagging, negative_ratio=3, seed=1)
    shipped, _ = training_rows(docs, RelationEncoder(*args, attributes=schema.attributes, max_pairs=4),
                               negative_ratio=3, seed=1)
    assert [{k: v for k, v in r.items() if k != "doc"} for r in tagged] == shipped
    # Every negative kept (no sampling), a document's rows alone are the rows tagged with it (the
    # rows are shuffled at the end, so compared as sets).
    tagged, _ = training_rows(docs, script.DocumentTaggingEncoder(*args, attributes=schema.attributes, max_pairs=4),
                              negative_ratio=-1, seed=1)
    assert len({r["doc"] for r in tagged}) > 1
    for i, doc in enumerate(docs):
        alone, _ = training_rows([doc], RelationEncoder(*args, attributes=schema.attributes, max_pairs=4),
                                 negative_ratio=-1, seed=1)
        mine = [{k: v for k, v in r.items() if k != "doc"} for r in tagged if r["doc"] == i]
        assert sorted(map(json.dumps, mine)) == sorted(map(json.dumps, alone))


def test_each_row_is_labelled_by_the_teacher_that_never_saw_its_document(script, world, tmp_path, monkeypatch):
    import shutil

    from conflict_ie.config import TrainConfig

    tmp, _ = world
    corpus, schema = load_corpus(tmp / "run" / "corpus")
    teachers = []
    for f in range(2):
        shutil.copytree(tmp / "run" / "relations", tmp_path / f"t{f}", ignore=shutil.ignore_patterns("checkpoints"))
        teachers.append(tmp_path / f"t{f}")
    seen, original = [], script.teacher_targets
    monkeypatch.setattr(script, "teacher_targets", lambda teacher, rows, *a, **k: seen.append(
        (teacher.config._name_or_path, [r["doc"] for r in rows])) or original(teacher, rows, *a, **k))
    cfg = TrainConfig.load(tmp / "run" / "train_config.yaml", ["relations.encoder_layers=1", "relations.epochs=1"])
    stats = script.train_student(cfg, corpus, schema, tmp / "missing", tmp_path / "rel", weight=0.5, init="base",
                                 temperature=3, cross_fit=teachers)
    folds = script.document_folds(len(corpus["train"]), 2)
    assert [name for name, _ in seen] == [str(t) for t in teachers]
    for f, (_, docs) in enumerate(seen):
        assert docs and {folds[d] for d in docs} == {f}
    assert sum(len(d) for _, d in seen) == stats["windows"]  # every row labelled once
    with pytest.raises(ValueError, match="cannot start from a teacher"):
        script.train_student(cfg, corpus, schema, tmp / "missing", tmp_path / "x", weight=0.5, init="teacher",
                             cross_fit=teachers)


def test_the_script_cross_fits_its_teachers_and_reuses_them(script, world, tmp_path, monkeypatch):
    import shutil

    from conflict_ie import training

    tmp, _ = world
    run = tmp_path / "run"
    shutil.copytree(tmp / "run", run, ignore=shutil.ignore_patterns("checkpoints"))
    args = ["--run", str(run), "--seeds", "1", "--split", "test", "--cross-fit", "2", "--temperature", "3",
            "--set", "relations.encoder_layers=1", "--set", "relations.epochs=1", "--out", str(tmp_path / "c.json")]
    trained, original = [], training.train_relations
    monkeypatch.setattr(training, "train_relations", lambda c, corpus, *a, **k: trained.append(
        (c.seed, c.relations.encoder_layers, len(corpus["train"]))) or original(c, corpus, *a, **k))
    assert script.main(args) == 0
    n = len(load_corpus(run / "corpus")[0]["train"])
    folds = script.document_folds(n, 2)
    assert sorted(trained) == sorted((1, 0, n - folds.count(f)) for f in range(2))
    for f in range(2):
        held = json.loads((run / f"teacher-fold-{f}-of-2" / "held_out.json").read_text())
        assert held == [i for i in range(n) if folds[i] == f]
    res = json.loads((tmp_path / "c.json").read_text())
    assert res["cross_fit"] == 2 and len(res["teacher"]) == 2 and "teacher_scores_fold_1" in res
    assert res["seeds"]["1"]["test"]["gold_f1"] is not None
    # A second run reuses the teachers; one recorded for other documents is refused, not reused.
    trained.clear()
    assert script.main(args) == 0 and trained == []
    (run / "teacher-fold-0-of-2" / "held_out.json").write_text("[0]")
    with pytest.raises(SystemExit, match="other documents"):
        script.main(args)
    with pytest.raises(SystemExit, match="no --teacher"):
        script.main(args + ["--init", "teacher"])


def test_each_student_layer_is_compared_with_the_teacher_layer_at_its_relative_depth(script):
    mine = [torch.zeros(1, 3, 2)] * 4  # embeddings and three layers
    theirs = [torch.full((1, 3, 2), float(i)) for i in range(7)]  # embeddings and six layers
    real = torch.tensor([[True, True, False]])
    # Layers 1, 2, 3 read teacher layers 2, 4, 6: squared gaps 4, 16, 36.
    assert script.hidden_state_gap(mine, theirs, real).item() == pytest.approx((4 + 16 + 36) / 3)
    # Padding is not compared: a gap there changes nothing.
    theirs[2] = theirs[2].clone()
    theirs[2][0, 2] = 100.0
    assert script.hidden_state_gap(mine, theirs, real).item() == pytest.approx((4 + 16 + 36) / 3)


def _distill_batch(script, rows, tok, schema):
    chunk = [r for r in rows if r["attrs"]][:2] + [r for r in rows if r["pairs"]][:2]
    n_choices = max(len(a.choices) for a in schema.attributes)
    return script.DistillCollator(tok.pad_token_id, len(schema.relation_labels), 0.5, n_choices)(chunk)


def test_the_hidden_term_is_the_weighted_gap_to_the_teachers_states(script, rows_and_teacher):
    rows, teacher, tok, schema = rows_and_teacher
    script.teacher_targets(teacher, rows, tok.pad_token_id)
    b = _distill_batch(script, rows, tok, schema)
    assert b["real_tokens"].sum() == sum(len(x) for x in b["input_ids"]) - (b["input_ids"] == tok.pad_token_id).sum()
    inputs = {k: b[k] for k in ("input_ids", "attention_mask", "position_ids")}
    with torch.inference_mode():
        # A student that is the teacher has no gap: the loss is the one without a teacher.
        twin = script.student_from_teacher(teacher, 2).eval()
        plain = twin(**b)["loss"]
        twin.attach_hidden_teacher(teacher, 10.0)
        assert twin(**b)["loss"].item() == pytest.approx(plain.item(), abs=1e-6)
        # A shallower one pays the weight times its gap.
        student = script.student_from_teacher(teacher, 1).eval()
        plain = student(**b)["loss"]
        student.attach_hidden_teacher(teacher, 10.0)
        zeros = torch.zeros_like(b["input_ids"])
        gap = script.hidden_state_gap(student.encoder(**inputs, token_type_ids=zeros, output_hidden_states=True)
                                      .hidden_states, teacher.encoder(**inputs, token_type_ids=zeros,
                                                                      output_hidden_states=True).hidden_states,
                                      b["real_tokens"])
        assert gap > 0
        assert student(**b)["loss"].item() == pytest.approx(plain.item() + 10.0 * gap.item(), rel=1e-5)
    assert "hidden_teacher" not in dict(student.named_children())
    assert student.state_dict().keys() == script.student_from_teacher(teacher, 1).state_dict().keys()


def test_the_hidden_weight_reaches_the_students_training(script, world, tmp_path):
    models = _students(world, tmp_path, script, {"off": {"weight": 0.5}, "on": {"weight": 0.5, "hidden_weight": 50.0}})
    assert all(type(m) is RelationModel for m in models.values())
    first = {k: m.encoder.encoder.layer[0].output.dense.weight for k, m in models.items()}
    assert not torch.allclose(first["off"], first["on"])
    tmp, _ = world
    corpus, schema = load_corpus(tmp / "run" / "corpus")
    from conflict_ie.config import TrainConfig

    cfg = TrainConfig.load(tmp / "run" / "train_config.yaml", ["relations.encoder_layers=1"])
    with pytest.raises(ValueError, match="hidden states"):
        script.train_student(cfg, corpus, schema, tmp / "run" / "relations", tmp_path / "x", weight=0.5,
                             init="base", hidden_weight=1.0, cross_fit=[tmp / "run" / "relations"] * 2)
