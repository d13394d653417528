"""Stand-off annotations joined with a text the repository does not hold, checked by hash."""

import json
from pathlib import Path

import pytest

from conflict_ie.agreement import agreement
from conflict_ie.documents import Document, Relation, Span
from conflict_ie.errors import InputError
from conflict_ie.labelstudio import read_labelstudio
from conflict_ie.standoff import FORMAT, read_standoff, standoff_record, standoff_tasks

TEXTS = {"D1": "ISIL fighters attacked Mosul. Gen. Votel said 12 civilians were killed.",
         "D2": "The Kurdish YPG fought ISIL near Raqqa."}


def _re3d_copy(root, texts=TEXTS):
    (root / "invented").mkdir(parents=True)
    rows = [{"_id": k, "title": k, "text": v, "sourceName": "t", "sourceUrl": ""} for k, v in texts.items()]
    (root / "invented" / "documents.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _doc(doc_id, *labelled, relations=()):
    text = TEXTS[doc_id]
    spans = tuple(Span(f"e{i}", text.index(w), text.index(w) + len(w), lab, dict(attrs))
                  for i, (w, lab, *attrs) in enumerate(labelled))
    return Document(doc_id, text, spans, tuple(Relation(*r) for r in relations))


def _folder(path, docs, annotator):
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"format": FORMAT, "schema": "conflict", "text_root": ""}))
    for d in docs:
        (path / "invented").mkdir(exist_ok=True)
        (path / "invented" / f"{d.id}.json").write_text(json.dumps(standoff_record(d, "invented", annotator)))
    return path


@pytest.fixture
def setup(tmp_path):
    root = _re3d_copy(tmp_path / "re3d")
    a = [_doc("D1", ("ISIL fighters", "ARMED_GROUP"), ("Mosul", "LOCATION"), ("Gen. Votel", "OFFICIAL"),
              ("12 civilians", "CASUALTY_FIGURE", ("casualty_type", "killed")), relations=[("e0", "e1", "LOCATED_IN")]),
         _doc("D2", ("Kurdish YPG", "ARMED_GROUP"), ("ISIL", "ARMED_GROUP"), relations=[("e0", "e1", "FIGHTS")])]
    return root, _folder(tmp_path / "first", a, "A"), tmp_path


def test_join_checks_and_keeps_everything(setup, schema):
    root, first, _ = setup
    docs = {d.id: d for d in read_standoff(first, root, schema)}
    d1 = docs["D1"]
    assert [d1.span_text(s) for s in d1.spans] == ["ISIL fighters", "Mosul", "Gen. Votel", "12 civilians"]
    assert d1.spans[3].attributes == {"casualty_type": "killed"} and d1.relations == (Relation("e0", "e1", "LOCATED_IN"),)
    assert d1.provenance.annotator == "A" and d1.provenance.fields["meta"]["origin"] == "re3d/invented"
    # The stored file holds offsets and hashes, never the text or a span's words.
    stored = (first / "invented" / "D1.json").read_text()
    assert "civilians" not in stored and "Mosul" not in stored


def test_changed_missing_and_shifted_sources_are_errors_naming_the_document(setup, schema, tmp_path):
    root, first, _ = setup
    changed = _re3d_copy(tmp_path / "changed", {**TEXTS, "D1": TEXTS["D1"].replace("12", "13")})
    with pytest.raises(InputError, match=r"D1.json.*document 'D1' differs from the one annotated"):
        read_standoff(first, changed, schema)
    missing = _re3d_copy(tmp_path / "missing", {"D2": TEXTS["D2"]})
    with pytest.raises(InputError, match=r"document 'D1' is not in the source texts"):
        read_standoff(first, missing, schema)
    record = json.loads((first / "invented" / "D1.json").read_text())
    record["spans"][1]["start"] += 1  # "osul." no longer matches its hash
    record["spans"][1]["end"] += 1
    (first / "invented" / "D1.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match=r"document 'D1', span e1: .*surface hash differs.*field spans\[1\]"):
        read_standoff(first, root, schema)
    with pytest.raises(InputError, match="the re3d texts are not at"):
        read_standoff(first, tmp_path / "nowhere", schema)


def test_two_annotators_make_one_export_that_agreement_and_the_strict_reader_read(setup, schema, tmp_path):
    root, first, _ = setup
    b = [_doc("D1", ("ISIL fighters", "ARMED_GROUP"), ("Mosul", "LOCATION"), ("Votel", "OFFICIAL"),
              ("12 civilians", "CASUALTY_FIGURE", ("casualty_type", "killed")))]
    second = _folder(tmp_path / "second", b, "B")
    tasks = standoff_tasks([first, second], root, schema, shared_only=True)
    assert len(tasks) == 1 and len(tasks[0]["annotations"]) == 2
    export = tmp_path / "pair.json"
    export.write_text(json.dumps(tasks))
    result = agreement(export, schema)
    (pair,) = result["pairs"]
    assert pair["annotators"] == ["A", "B"] and pair["per_label"]["OFFICIAL"]["f1"] == 0.0
    assert pair["per_label"]["LOCATION"]["f1"] == 1.0
    docs = read_labelstudio(export, schema).require_documents()
    assert [d.provenance.annotator for d in docs] == ["A"]  # the ground-truth annotation is the first folder's


def test_cli_and_config_take_stand_off_folders(setup, schema, tmp_path):
    from conflict_ie.cli import main as cli
    from conflict_ie.config import TrainConfig
    from conflict_ie.run import prepare_corpus

    root, first, _ = setup
    out = tmp_path / "export.json"
    assert cli(["corpus", "standoff", "--annotations", str(first), "--text-root", str(root), "--out", str(out)]) == 0
    assert len(read_labelstudio(out, schema).documents) == 2
    config = TrainConfig.from_dict({"inputs": [str(first)], "text_root": str(root),
                                    "split": {"train": 0.5, "validation": 0.0, "test": 0.5}})
    corpus, _ = prepare_corpus(config, None, tmp_path / "run")
    assert sum(len(corpus[k]) for k in corpus) == 2


def test_the_full_config_reads_every_source_with_no_other_argument(tmp_path, monkeypatch):
    """configs/train/conflict-full.yaml: the bundled export and the re3d stand-off annotations,
    their text read from ../shared/data/re3d (the manifest's default), joined and hash-checked."""
    from conftest import shared_or_skip

    from conflict_ie.config import TrainConfig
    from conflict_ie.run import prepare_corpus

    shared_or_skip("data", "re3d")
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)  # the config names its inputs relative to the repository, as the README runs it
    config = TrainConfig.load("configs/train/conflict-full.yaml")
    corpus, _ = prepare_corpus(config, None, tmp_path / "run")
    origins = [json.loads(m)["fields"]["meta"].get("origin", "") for split in corpus.values() for m in split["meta"]]
    n_re3d = len(list((repo / "annotations" / "re3d-conflict").glob("*/*.json")))
    assert sum(o.startswith("re3d/") for o in origins) == n_re3d > 0
    assert sum(o == "written-for-project" for o in origins) == 44
