"""Export -> corpus -> a few training steps (entities and relations) -> evaluate -> reload -> predict,
on a tiny random model built here. Checks plumbing and invariants, not quality."""

import json

import pytest

from conflict_ie.cli import main as cli

from conflict_ie.config import TrainConfig
from conflict_ie.labelstudio import read_labelstudio

from conftest import BODIES  # noqa: F401  (used by other test modules through here too)


def test_run_folder_is_complete(world):
    run = world[0] / "run"
    for name in ["config.json", "model.safetensors", "tokenizer.json", "schema.yaml", "train_config.yaml",
                 "metrics.json", "conflict_ie.json", "log_history.json", "report/report.md",
                 "report/per_label_f1.png", "report/confusion_matrix.png", "report/learning_curve.png",
                 "relations/config.json", "relations/model.safetensors",
                 "corpus/dataset_dict.json"]:
        assert (run / name).exists(), name
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["id2label"]["1"] == "B-ARMED_GROUP"
    TrainConfig.load(run / "train_config.yaml")  # the resolved config loads back


def test_metrics_shape(world):
    m = json.loads((world[0] / "run" / "metrics.json").read_text())
    ner = m["ner"]
    for mode in ("strict", "lenient"):
        assert set(ner[mode]) == {"micro", "macro", "per_label"}
        assert set(ner[mode]["micro"]) == {"precision", "recall", "f1"}
        assert set(ner[mode]["per_label"]["LOCATION"]) == {"precision", "recall", "f1", "support"}
    assert set(ner["partial_overlap"]["micro"]) == {"precision", "recall", "f1"}
    assert m["n_documents"] == 3 and m["n_gold_entities"] > 0
    assert set(m["relations"]) == {"gold_entities", "end_to_end"}
    assert set(m["relations"]["end_to_end"]["per_label"]) == {"AFFILIATED_WITH", "LOCATED_IN", "PERPETRATOR",
                                                               "FIGHTS"}
    assert set(m["casualties"]) == {"type_accuracy", "count_exact", "n"}


def test_reload_and_predict(world, schema):
    from conflict_ie.predictor import Predictor
    p = Predictor.from_pretrained(world[0] / "run")
    text = "Wagner Group fighters killed 12 villagers in Bakhmut. " * 30  # longer than one window
    doc = p.predict(text)
    # The tiny model has seen this sentence in training: it finds its figure in many of the 30
    # copies, and with the run's relation threshold of 0 every allowed candidate is a relation.
    figures = [e for e in doc.entities if e.label == "CASUALTY_FIGURE"]
    assert len(figures) >= 10 and doc.relations and len(doc.casualties) == len(figures)
    assert all(e.text == text[e.start:e.end] and 0 <= e.score <= 1 for e in doc.entities)
    spans = [(e.start, e.end) for e in doc.entities]
    assert spans == sorted(spans) and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # no doubles
    ids = {e.id for e in doc.entities}
    assert all(r.head.id in ids and r.tail.id in ids and schema.allows(r.label, r.head.label, r.tail.label)
               for r in doc.relations)
    assert len(doc.casualties) == sum(e.label == "CASUALTY_FIGURE" for e in doc.entities)
    # Label Studio pre-annotation reads back with the strict reader.
    task = {"id": 1, "data": {"text": text}, "annotations": [{"id": 1, **doc.to_labelstudio()}]}
    for item in task["annotations"][0]["result"]:
        if item["type"] == "labels" and item["value"]["labels"] == ["CASUALTY_FIGURE"]:
            assert any(i["type"] == "choices" and i["id"] == item["id"] for i in task["annotations"][0]["result"])
    back = read_labelstudio([task], schema).documents[0]
    assert [(s.start, s.end, s.label) for s in back.spans] == [(e.start, e.end, e.label) for e in doc.entities]
    assert json.dumps(doc.to_dict())


def test_schema_mismatch_on_load(world):
    from conflict_ie.errors import ConfigError
    from conflict_ie.predictor import Predictor
    from conflict_ie.schema import LabelSchema
    other = LabelSchema.from_dict({"name": "x", "entities": [{"label": "PERSON"}]})
    with pytest.raises(ConfigError, match="only in the given schema: \\['PERSON'\\]"):
        Predictor.from_pretrained(world[0] / "run", schema=other)


def test_evaluate_and_predict_cli(world, tmp_path, capsys):
    run = world[0] / "run"
    capsys.readouterr()
    assert cli(["evaluate", "--model", str(run), "--input", str(world[1]), "--report-dir", str(tmp_path / "rep")]) == 0
    assert json.loads(capsys.readouterr().out)["n_documents"] == 15
    assert (tmp_path / "rep" / "report.md").exists()
    f = tmp_path / "a.txt"
    f.write_text("Wagner Group fighters killed 12 villagers in Bakhmut.")
    outputs = {}
    for fmt in ("table", "json", "jsonl", "labelstudio", "casualties"):
        capsys.readouterr()
        assert cli(["predict", "--model", str(run), str(f), "--format", fmt]) == 0
        outputs[fmt] = capsys.readouterr().out
    # What each format holds is pinned by tests/test_output_golden.py; here, that the CLI wrote it.
    (as_json,) = json.loads(outputs["json"])
    assert as_json["file"] == str(f) and as_json["entities"] and json.loads(outputs["jsonl"]) == as_json
    assert json.loads(outputs["labelstudio"])[0]["predictions"][0]["result"]
    assert outputs["table"].startswith(f"# {f}: {len(as_json['entities'])} entities")
    assert outputs["casualties"].startswith("file,text,start,end,count_min,count_max,approximate,casualty_type")
    assert len(outputs["casualties"].splitlines()) == 1 + len(as_json["casualties"])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00bad")
    assert cli(["predict", "--model", str(run), str(bad)]) == 2
    assert "bad.txt" in capsys.readouterr().err


def test_checkpoint_folder_loads(world):
    """A Trainer checkpoint (no schema.yaml, no relations) loads; labels come from its id2label."""
    from conflict_ie.predictor import Predictor
    ckpt = sorted((world[0] / "run" / "checkpoints").glob("checkpoint-*"))[-1]
    p = Predictor.from_pretrained(ckpt)
    assert p.schema.entity_labels == ("ARMED_GROUP", "OFFICIAL", "CASUALTY_FIGURE", "LOCATION", "WEAPON")
    assert p.relation_model is None
    doc = p.predict("Wagner Group fighters killed 12 villagers in Bakhmut.")
    # Entities without a relation model: figures are found, but no casualty record is built.
    assert any(e.label == "CASUALTY_FIGURE" for e in doc.entities) and doc.casualties == () and not doc.relations
