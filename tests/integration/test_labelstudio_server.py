"""Through a real Label Studio: init a project, annotate over the API, pull, build the corpus.

Checks what hand-written fixtures cannot: that the labeling config the CLI
creates is accepted as is, that the snapshot export ``labelstudio pull`` makes
keeps cancelled annotations, expanded annotators and per-region choices, and
that the reader turns a left-drawn relation around and picks the ground-truth
annotation over a later one by another annotator.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import pytest

from conflict_ie.agreement import agreement
from conflict_ie.cli import main
from conflict_ie.corpus import documents_of, load_corpus
from conflict_ie.documents import Relation
from conflict_ie.labelstudio import read_labelstudio
from conflict_ie.schema import LabelSchema

pytestmark = pytest.mark.labelstudio

TEXT_A = (
    "Wagner Group fighters killed 12 villagers in Bakhmut on Monday, officials said.\n\n"
    "The attack followed three days of shelling."
)
TEXT_B = "Ukrainian forces regrouped near Kherson after the strike."
ANNOTATOR_2 = "annotator2@example.com"


def span(rid, text, fragment, label):
    start = text.index(fragment)
    end = start + len(fragment)
    return {"id": rid, "from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}


def choice(rid, text, fragment, value, name="casualty_type"):
    start = text.index(fragment)
    end = start + len(fragment)
    return {"id": rid, "from_name": name, "to_name": "text", "type": "choices",
            "value": {"start": start, "end": end, "text": text[start:end], "choices": [value]}}


def relation(from_id, to_id, label, direction="right"):
    return {"from_id": from_id, "to_id": to_id, "type": "relation", "direction": direction, "labels": [label]}


def offsets(text, fragment):
    start = text.index(fragment)
    return start, start + len(fragment)


def shape(elem):
    """An XML element as comparable data, ignoring indentation."""
    return (elem.tag, dict(sorted(elem.attrib.items())), (elem.text or "").strip(), [shape(c) for c in elem])


def test_init_annotate_pull_build(labelstudio_server, tmp_path, monkeypatch, capsys):
    from label_studio_sdk import LabelStudio

    url, token = labelstudio_server
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    schema = LabelSchema.load("conflict")
    ls = LabelStudio(base_url=url, api_key=token)

    # --- labelstudio init: project from the schema, one task per .txt file
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text(TEXT_A, encoding="utf-8")
    (texts / "b.txt").write_text(TEXT_B, encoding="utf-8")
    # Label Studio wants titles of at least 3 characters: a clear refusal (exit 2), no project left behind.
    assert main(["labelstudio", "init", "--url", url, "--texts", str(texts), "--title", "IT"]) == 2
    err = capsys.readouterr().err
    assert "refused to create the project" in err and "at least 3 characters" in err
    assert not [p for p in ls.projects.list() if p.title == "IT"]
    assert main(["labelstudio", "init", "--url", url, "--texts", str(texts), "--title", "IT run"]) == 0
    assert "with 2 task(s)" in capsys.readouterr().out

    projects = [p for p in ls.projects.list() if p.title == "IT run"]
    assert len(projects) == 1, [p.title for p in ls.projects.list()]
    pid = projects[0].id
    config = ET.fromstring(ls.projects.get(id=pid).label_config)
    expected = ET.fromstring(schema.labelstudio_config())
    assert shape(config) == shape(expected)
    assert {e.get("value") for e in config.iter("Label")} == set(schema.entity_labels)
    per_region = [c for c in config.iter("Choices") if c.get("perRegion") == "true"]
    assert [c.get("name") for c in per_region] == ["casualty_type"]
    assert {c.get("value") for c in per_region[0].iter("Choice")} == set(schema.attribute("casualty_type").choices)
    assert {r.get("value") for r in config.iter("Relation")} == set(schema.relation_labels)

    tasks = {t.data["source_file"]: t for t in ls.tasks.list(project=pid)}
    assert sorted(tasks) == ["a.txt", "b.txt"]
    task_a, task_b = tasks["a.txt"].id, tasks["b.txt"].id
    assert tasks["a.txt"].data["text"] == TEXT_A

    # --- annotations through the API
    admin_id = ls.users.whoami().id
    user2 = ls.users.create(username="annotator2", email=ANNOTATOR_2, password="annotator2-password-x")
    result_1 = [
        span("grp0000001", TEXT_A, "Wagner Group", "ARMED_GROUP"),
        span("cas0000001", TEXT_A, "12 villagers", "CASUALTY_FIGURE"),
        choice("cas0000001", TEXT_A, "12 villagers", "killed"),
        span("loc0000001", TEXT_A, "Bakhmut", "LOCATION"),
        relation("cas0000001", "grp0000001", "PERPETRATOR"),
        relation("loc0000001", "cas0000001", "LOCATED_IN", direction="left"),  # drawn from the place
    ]
    gt = ls.annotations.create(id=task_a, result=result_1, ground_truth=True, lead_time=30.0)
    time.sleep(1.1)  # so that the second annotator's annotation is strictly later
    other = ls.annotations.create(
        id=task_a,
        completed_by=user2.id,
        result=[span("x2grp00001", TEXT_A, "Wagner Group", "ARMED_GROUP"),
                span("x2loc00001", TEXT_A, "Bakhmut on Monday", "LOCATION")],
        lead_time=12.0,
    )
    time.sleep(1.1)
    cancelled = ls.annotations.create(id=task_a, result=[], was_cancelled=True, completed_by=admin_id)
    only_b = ls.annotations.create(id=task_b, result=[span("kh00000001", TEXT_B, "Kherson", "LOCATION")])

    # --- labelstudio pull
    out_json = tmp_path / "export.json"
    assert main(["labelstudio", "pull", "--url", url, "--project", str(pid), "--out", str(out_json)]) == 0
    assert "wrote 2 task(s)" in capsys.readouterr().out
    exported = {t["id"]: t for t in json.loads(out_json.read_text(encoding="utf-8"))}
    anns = {a["id"]: a for a in exported[task_a]["annotations"]}
    assert set(anns) == {gt.id, other.id, cancelled.id}  # the cancelled one is exported, flagged
    assert anns[cancelled.id]["was_cancelled"] is True
    assert anns[gt.id]["ground_truth"] is True
    assert anns[gt.id]["completed_by"]["email"] == "admin@example.com"  # expanded annotators
    assert anns[other.id]["completed_by"]["email"] == ANNOTATOR_2
    assert anns[other.id]["updated_at"] > anns[gt.id]["updated_at"]
    drawn = {r["labels"][0]: r for r in anns[gt.id]["result"] if r["type"] == "relation"}
    assert (drawn["LOCATED_IN"]["from_id"], drawn["LOCATED_IN"]["direction"]) == ("loc0000001", "left")
    assert {r["id"] for r in anns[gt.id]["result"] if r["type"] == "choices"} == {"cas0000001"}
    # The later annotation is what "latest" would take: ground truth must win below for a reason.
    latest = read_labelstudio(out_json, schema, policy="latest").documents
    assert {d.id: d.provenance.annotation_id for d in latest}[str(task_a)] == str(other.id)

    # --- corpus build, then read the corpus back
    corpus_dir = tmp_path / "corpus"
    assert main(["corpus", "build", "--input", f"train={out_json}", "--out", str(corpus_dir)]) == 0
    corpus, corpus_schema = load_corpus(corpus_dir)
    assert (len(corpus["train"]), len(corpus["validation"]), len(corpus["test"])) == (2, 0, 0)
    docs = {d.id: d for d in documents_of(corpus["train"], corpus_schema)}
    assert set(docs) == {str(task_a), str(task_b)}

    a = docs[str(task_a)]
    assert a.text == TEXT_A
    assert a.provenance.annotation_id == str(gt.id)
    assert a.provenance.annotator == "admin@example.com"
    assert a.provenance.annotation_id not in (str(cancelled.id), str(other.id))
    assert a.provenance.fields["data"] == {"source_file": "a.txt"}
    got = [(s.id, s.start, s.end, s.label, a.text[s.start:s.end], dict(s.attributes)) for s in a.spans]
    assert got == [
        ("grp0000001", *offsets(TEXT_A, "Wagner Group"), "ARMED_GROUP", "Wagner Group", {}),
        ("cas0000001", *offsets(TEXT_A, "12 villagers"), "CASUALTY_FIGURE", "12 villagers",
         {"casualty_type": "killed"}),
        ("loc0000001", *offsets(TEXT_A, "Bakhmut"), "LOCATION", "Bakhmut", {}),
    ]
    assert set(a.relations) == {
        Relation("cas0000001", "grp0000001", "PERPETRATOR"),
        Relation("cas0000001", "loc0000001", "LOCATED_IN"),  # the left-drawn one, turned around
    }
    assert len(a.relations) == 2

    b = docs[str(task_b)]
    assert b.provenance.annotation_id == str(only_b.id)
    assert b.provenance.annotator == "admin@example.com"
    assert [(s.start, s.end, s.label, b.text[s.start:s.end]) for s in b.spans] == [
        (*offsets(TEXT_B, "Kherson"), "LOCATION", "Kherson")
    ]
    assert b.relations == ()

    # --- agreement: the two annotators of task A (the cancelled annotation does not count)
    result = agreement(out_json, schema)
    assert result["tasks_with_several_annotators"] == 1
    assert len(result["pairs"]) == 1
    pair = result["pairs"][0]
    assert pair["annotators"] == sorted(["admin@example.com", ANNOTATOR_2])
    assert pair["tasks"] == 1
    # admin: Wagner Group, 12 villagers, Bakhmut; annotator 2: Wagner Group, "Bakhmut on Monday".
    assert pair["micro"]["matched"] == 1
    assert pair["micro"]["f1"] == pytest.approx(2 * 1 / (3 + 2))
    assert pair["per_label"]["ARMED_GROUP"]["f1"] == pytest.approx(1.0)
    assert pair["per_label"]["LOCATION"]["f1"] == 0.0
    assert pair["per_label"]["CASUALTY_FIGURE"]["a"] == 1 and pair["per_label"]["CASUALTY_FIGURE"]["b"] == 0
