import json
import subprocess
import sys

import pytest

from conflict_ie.errors import InputError
from conflict_ie.labelstudio import choose_annotation, documents_to_tasks, read_labelstudio
from factories import TEXT, choice, good_task, mutate, region, relation, write


def read(tmp_path, tasks, schema, **kw):
    return read_labelstudio(write(tmp_path, tasks), schema, **kw)


def test_good_task_reads_exactly(tmp_path, schema):
    res = read(tmp_path, [good_task()], schema)
    (doc,) = res.documents
    assert [(s.id, s.label, doc.text[s.start:s.end]) for s in doc.spans] == [
        ("g1", "ARMED_GROUP", "Wagner Group"), ("c1", "CASUALTY_FIGURE", "12 villagers"),
        ("l1", "LOCATION", "Bakhmut"), ("o1", "OFFICIAL", "Governor Ivan Petrov")]
    assert doc.spans[1].attributes == {"casualty_type": "killed"}
    assert {(r.head, r.tail, r.label) for r in doc.relations} == {("c1", "g1", "PERPETRATOR"),
                                                                   ("c1", "l1", "LOCATED_IN")}
    assert doc.provenance.task_id == "1" and doc.provenance.annotation_id == "101"
    assert doc.provenance.annotator == "1"
    assert doc.provenance.fields["data"] == {"source_url": "https://example.org/a"}
    assert doc.provenance.fields["meta"] == {"origin": "test"}


def test_not_json(tmp_path, schema):
    p = tmp_path / "x.json"
    p.write_text("[{")
    with pytest.raises(InputError, match=r"x\.json: not JSON"):
        read_labelstudio(p, schema)


def test_not_a_list(tmp_path, schema):
    with pytest.raises(InputError, match="not a list of tasks"):
        read(tmp_path, {"tasks": []}, schema)


def test_missing_text_field(tmp_path, schema):
    task = mutate(good_task(7), lambda t: t["data"].pop("text"))
    with pytest.raises(InputError, match=r"task 7: data has no text field 'text'"):
        read(tmp_path, [task], schema)


def test_custom_text_field(tmp_path, schema):
    task = mutate(good_task(), lambda t: t["data"].update(body=t["data"].pop("text")))
    assert read(tmp_path, [task], schema, text_field="body").documents[0].text == TEXT


def _set_region(task, rid, **value):
    for item in task["annotations"][0]["result"]:
        if item.get("id") == rid:
            item["value"].update(value)


@pytest.mark.parametrize(
    "change, pattern",
    [
        (dict(start=70, end=90), r"task 1, region o1: offsets 70-90 lie outside the text"),
        (dict(start=60, end=59, text=""), r"region o1: start 60 >= end 59"),
        (dict(labels=["PERSON"]), r"region o1: label 'PERSON' is not in schema 'conflict'; known labels: \["),
    ],
)
def test_bad_region_errors(tmp_path, schema, change, pattern):
    task = mutate(good_task(), lambda t: _set_region(t, "o1", **change))
    with pytest.raises(InputError, match=pattern):
        read(tmp_path, [task], schema)


def test_text_mismatch_reported(tmp_path, schema):
    task = mutate(good_task(), lambda t: _set_region(t, "l1", text="Kyiv"))
    with pytest.raises(InputError, match=r"region l1: value.text 'Kyiv' differs from the text"):
        read(tmp_path, [task], schema)


def test_white_space_collapsing_is_not_a_mismatch(tmp_path, schema):
    text = "Wagner  Group\nfighters"
    task = {"id": 1, "data": {"text": text}, "annotations": [{"id": 1, "result": [
        {"id": "a", "type": "labels", "from_name": "label", "to_name": "text",
         "value": {"start": 0, "end": 13, "text": "Wagner Group", "labels": ["ARMED_GROUP"]}}]}]}
    assert read(tmp_path, [task], schema).documents[0].spans[0].end == 13


def test_unknown_endpoint(tmp_path, schema):
    task = mutate(good_task(), lambda t: t["annotations"][0]["result"].append(relation("o1", "zz", "AFFILIATED_WITH")))
    with pytest.raises(InputError, match=r"region 'zz' does not exist"):
        read(tmp_path, [task], schema)


def test_forbidden_relation_pair(tmp_path, schema):
    task = mutate(good_task(), lambda t: t["annotations"][0]["result"].append(relation("l1", "o1", "AFFILIATED_WITH")))
    with pytest.raises(InputError, match=r"from LOCATION \(l1\) to OFFICIAL \(o1\) is not allowed"):
        read(tmp_path, [task], schema)


def test_overlap_names_both_spans(tmp_path, schema):
    task = mutate(good_task(), lambda t: t["annotations"][0]["result"].append(region("x9", 7, 20, TEXT, "ARMED_GROUP")))
    with pytest.raises(InputError, match=r"spans overlap: g1 ARMED_GROUP 0-12 'Wagner Group' and x9 ARMED_GROUP 7-20"):
        read(tmp_path, [task], schema)


def test_lenient_skips_and_counts(tmp_path, schema):
    def break_it(t):
        res = t["annotations"][0]["result"]
        res.append(region("x9", 7, 20, TEXT, "ARMED_GROUP"))  # overlap
        res.append(region("x8", 0, 3, TEXT, "PERSON"))  # unknown label -> also overlaps, skipped first
        _set_region(t, "g1", start=0, end=500)  # out of range -> relation c1->g1 loses an endpoint
    task = mutate(good_task(), break_it)
    res = read(tmp_path, [task], schema, lenient=True)
    (doc,) = res.documents
    assert {s.id for s in doc.spans} == {"c1", "l1", "o1", "x9"}
    assert res.report.skipped == {"offsets_out_of_range": 1, "unknown_label": 1, "unknown_endpoint": 1}
    assert len(res.report.messages) == 3 and all("export.json, task 1, region " in m for m in res.report.messages)


def test_direction_left_is_turned_around(tmp_path, schema):
    task = mutate(good_task(), lambda t: t["annotations"][0]["result"].append(relation("g1", "o1", "AFFILIATED_WITH",
                                                                                   direction="left")))
    rels = {(r.head, r.tail, r.label) for r in read(tmp_path, [task], schema).documents[0].relations}
    assert rels == {("c1", "g1", "PERPETRATOR"), ("c1", "l1", "LOCATED_IN"), ("o1", "g1", "AFFILIATED_WITH")}


def test_bidirectional_directed_relation_reported(tmp_path, schema):
    task = mutate(good_task(), lambda t: t["annotations"][0]["result"].append(relation("o1", "g1", "AFFILIATED_WITH",
                                                                                   direction="bi")))
    with pytest.raises(InputError, match="bidirectional"):
        read(tmp_path, [task], schema)


def test_bidirectional_symmetric_relation_kept(tmp_path, schema):
    from conflict_ie.schema import LabelSchema
    d = schema.to_dict()
    (fights,) = [r for r in d["relations"] if r["label"] == "FIGHTS"]
    fights["symmetric"] = True  # declared symmetric in this variant
    task = good_task()
    task["annotations"][0]["result"] = [region("a", 0, 12, TEXT, "ARMED_GROUP"), region("b", 45, 52, TEXT, "ARMED_GROUP"),
                                        relation("a", "b", "FIGHTS", direction="bi")]
    doc = read(tmp_path, [task], LabelSchema.from_dict(d)).documents[0]
    assert [(r.head, r.tail, r.label) for r in doc.relations] == [("a", "b", "FIGHTS")]


def test_missing_casualty_type(tmp_path, schema):
    task = mutate(good_task(), lambda t: t["annotations"][0]["result"].pop(2))
    with pytest.raises(InputError, match="region c1: CASUALTY_FIGURE region has no casualty_type"):
        read(tmp_path, [task], schema)


def test_unknown_choice(tmp_path, schema):
    task = mutate(good_task(), lambda t: t["annotations"][0]["result"].__setitem__(2, choice("c1", 29, 41, TEXT,
                                                                                           "murdered")))
    with pytest.raises(InputError, match="casualty_type='murdered' is not a choice"):
        read(tmp_path, [task], schema)


def _two_annotations():
    task = good_task()
    second = json.loads(json.dumps(task["annotations"][0]))
    second.update(id=202, completed_by=2, updated_at="2024-02-01T00:00:00Z")
    second["result"] = second["result"][:1]
    task["annotations"].append(second)
    return task


def test_policy_latest_by_default_without_ground_truth(tmp_path, schema):
    doc = read(tmp_path, [_two_annotations()], schema).documents[0]
    assert doc.provenance.annotation_id == "202" and len(doc.spans) == 1


def test_policy_ground_truth_wins(tmp_path, schema):
    task = _two_annotations()
    task["annotations"][0]["ground_truth"] = True
    assert read(tmp_path, [task], schema).documents[0].provenance.annotation_id == "101"
    assert read(tmp_path, [task], schema, policy="latest").documents[0].provenance.annotation_id == "202"
    assert read(tmp_path, [task], schema, policy="annotator:1").documents[0].provenance.annotation_id == "101"


def test_cancelled_and_drafts_never_used(tmp_path, schema):
    task = _two_annotations()
    task["annotations"][1]["was_cancelled"] = True
    task["drafts"] = [{"id": 5, "result": [region("d", 0, 6, TEXT, "WEAPON")], "updated_at": "2030-01-01"}]
    doc = read(tmp_path, [task], schema).documents[0]
    assert doc.provenance.annotation_id == "101"
    only_cancelled = mutate(task, lambda t: t["annotations"].pop(0))
    res = read(tmp_path, [only_cancelled], schema)
    assert res.documents == [] and res.report.skipped == {"no_annotation": 1}


def test_choose_annotation_unknown_policy():
    from conflict_ie.errors import ConfigError
    with pytest.raises(ConfigError, match="unknown annotation policy"):
        choose_annotation({"annotations": [{"id": 1}]}, "best")


def test_json_min_warns(tmp_path, schema):
    rows = [{"id": 1, "text": TEXT, "annotator": 3, "annotation_id": 9, "updated_at": "2024-01-01",
             "label": [{"start": 0, "end": 12, "text": "Wagner Group", "labels": ["ARMED_GROUP"]}]}]
    res = read(tmp_path, rows, schema)
    assert [s.label for s in res.documents[0].spans] == ["ARMED_GROUP"]
    assert any("JSON_MIN" in w and "no relations" in w for w in res.report.warnings)


def test_round_trip_through_writer(tmp_path, schema):
    docs = read(tmp_path, [good_task()], schema).documents
    again = read_labelstudio(documents_to_tasks(docs), schema).documents
    # Against literal values, not only against each other: an empty read on both sides must fail.
    assert [(s.start, s.end, s.label, dict(s.attributes)) for s in again[0].spans] == [
        (0, 12, "ARMED_GROUP", {}), (29, 41, "CASUALTY_FIGURE", {"casualty_type": "killed"}),
        (45, 52, "LOCATION", {}), (59, 79, "OFFICIAL", {})]
    assert [(s.start, s.end, s.label, dict(s.attributes)) for s in docs[0].spans] == \
        [(s.start, s.end, s.label, dict(s.attributes)) for s in again[0].spans]
    assert again[0].relations == docs[0].relations and len(again[0].relations) == 2


def test_cli_error_is_clear_without_traceback(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    out = subprocess.run([sys.executable, "-m", "conflict_ie.cli", "corpus", "build", "--input", str(p), "--out",
                          str(tmp_path / "c")], capture_output=True, text=True)
    assert out.returncode == 2
    assert "bad.json: not JSON" in out.stderr and "Traceback" not in out.stderr
    debug = subprocess.run([sys.executable, "-m", "conflict_ie.cli", "--debug", "corpus", "build", "--input", str(p),
                            "--out", str(tmp_path / "c")], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_agreement(tmp_path, schema):
    from conflict_ie.agreement import agreement
    task = _two_annotations()  # annotator 2 labelled only the first of annotator 1's four spans
    result = agreement(write(tmp_path, [task]), schema)
    (pair,) = result["pairs"]
    assert pair["annotators"] == ["1", "2"] and pair["tasks"] == 1
    assert pair["per_label"]["ARMED_GROUP"]["f1"] == 1.0
    assert pair["per_label"]["LOCATION"]["f1"] == 0.0
    assert pair["micro"]["f1"] == pytest.approx(2 * 1 * 0.25 / 1.25)
