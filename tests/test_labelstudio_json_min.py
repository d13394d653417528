"""JSON_MIN exports: the golden documents of a hand-written export, per-region choices, unannotated rows.

``data/labelstudio_json_min.json`` has the row shape of Label Studio's JSON_MIN writer
(``label_studio_sdk.converter``, SDK 2.1.2): the task data at the top level, then one key per
control tag, then ``annotator``, ``annotation_id``, ``created_at``, ``updated_at``, ``lead_time``.
Its rows:

- task 21 twice (annotators 4 and 5): the later row, annotation 52, is the one read;
- task 22: two CASUALTY_FIGURE regions whose ``casualty_type`` objects are listed in the other order
  than the regions, so only their offsets can tie them;
- task 23: never annotated, written as Label Studio writes such a task (``annotation_id`` null,
  no control-tag keys): skipped and counted as ``no_annotation``, in strict mode too, like a
  full-export task without a usable annotation;
- task 24: an annotation (57) with no regions: a document with no spans, as in the full export.

The offsets below were counted by hand in the texts.
"""

import json
from pathlib import Path

import pytest

from conflict_ie.documents import Document, Provenance, Span
from conflict_ie.errors import InputError
from conflict_ie.labelstudio import read_labelstudio

FIXTURE = Path(__file__).parent / "data" / "labelstudio_json_min.json"
T21 = "Militia gunmen abducted 14 passengers on the road to Kaura-Namoda on Sunday."
T22 = "Two medics were killed and 30 to 40 people were wounded when drones struck Sumy."
T24 = "The ceasefire held overnight, residents said."


def rows():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def expected(source: str) -> list[Document]:
    return [
        Document("21", T21, (
            Span("label-0", 0, 14, "ARMED_GROUP", {}),
            Span("label-1", 24, 37, "CASUALTY_FIGURE", {"casualty_type": "captured"}),
            Span("label-2", 53, 65, "LOCATION", {}),
        ), (), Provenance(source=source, task_id="21", annotation_id="52", annotator="5")),
        Document("22", T22, (
            Span("label-0", 0, 10, "CASUALTY_FIGURE", {"casualty_type": "killed"}),
            Span("label-2", 27, 42, "CASUALTY_FIGURE", {"casualty_type": "injured"}),
            Span("label-1", 61, 67, "WEAPON", {}),
            Span("label-3", 75, 79, "LOCATION", {}),
        ), (), Provenance(source=source, task_id="22", annotation_id="53", annotator="5")),
        Document("24", T24, (), (), Provenance(source=source, task_id="24", annotation_id="57", annotator="5")),
    ]


@pytest.mark.parametrize("lenient", [False, True])
def test_golden_documents(schema, lenient):
    res = read_labelstudio(FIXTURE, schema, lenient=lenient)
    assert res.documents == expected(str(FIXTURE))
    # The spans' own text, as a second reading of the same offsets.
    assert [T22[s.start:s.end] for s in res.documents[1].spans] == ["Two medics", "30 to 40 people", "drones", "Sumy"]


def test_report(schema):
    report = read_labelstudio(FIXTURE, schema).report
    assert (report.n_tasks, report.n_documents) == (4, 3)
    assert report.skipped == {"no_annotation": 1}
    assert report.messages == [f"{FIXTURE}, task 23: no annotation (no annotation_id, no regions)"]
    assert any("JSON_MIN" in w and "no relations" in w for w in report.warnings)
    assert "1 repeated row(s) of other annotators were not used" in report.warnings
    assert f"{FIXTURE}: 1 annotated task(s) have no regions; read as documents with no spans" in report.warnings


def test_empty_label_list_without_annotation_id_is_no_annotation(schema):
    data = [{"id": 5, "text": T24, "label": [], "annotation_id": None}]
    res = read_labelstudio(data, schema)
    assert res.documents == [] and res.report.skipped == {"no_annotation": 1}


def test_bare_string_choice_is_refused(tmp_path, schema):
    # Label Studio's writer flattens a single region's single choice to a bare string: no offsets left.
    data = rows()
    data[1]["casualty_type"] = "captured"
    path = tmp_path / "project-3-at-2025.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"project-3-at-2025\.json, task 21: field 'casualty_type': value "
                                         r"'captured' has no region offsets.*export the project as JSON"):
        read_labelstudio(path, schema)


def test_list_of_strings_choice_is_refused_in_lenient_mode_too(tmp_path, schema):
    data = rows()
    data[2]["casualty_type"] = ["killed", "injured"]
    path = tmp_path / "min.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"min\.json, task 22: field 'casualty_type': value \['killed', 'injured'\]"):
        read_labelstudio(path, schema, lenient=True)


def test_choice_matching_no_region_is_refused(schema):
    data = rows()
    data[2]["casualty_type"][0]["start"] = 26
    with pytest.raises(InputError, match=r"task 22: field 'casualty_type': the choice \['injured'\] at 26-42 "
                                         r"'30 to 40 people' matches no labelled region"):
        read_labelstudio(data, schema)


def test_missing_choice_is_the_usual_missing_attribute(schema):
    data = rows()
    del data[1]["casualty_type"]
    with pytest.raises(InputError, match=r"task 21, region label-1: CASUALTY_FIGURE region has no casualty_type"):
        read_labelstudio(data, schema)
    res = read_labelstudio(data, schema, lenient=True)
    assert res.report.skipped == {"no_annotation": 1, "missing_attribute": 1}
    assert [s.id for s in res.documents[0].spans] == ["label-0", "label-2"]


def test_data_fields_are_not_regions(schema):
    data = rows()[2:3]
    data[0]["authors"] = [{"name": "A. Writer"}]  # a list of objects in the task data, not a control tag
    (doc,) = read_labelstudio(data, schema).documents
    assert len(doc.spans) == 4


def test_a_malformed_row_without_an_id_is_named_by_its_position(tmp_path, schema):
    # Found by the property test: a row with no "id" and a number for its labels field was refused
    # with the field named but no task, although every other message names such a row "#INDEX".
    path = tmp_path / "min.json"
    path.write_text(json.dumps([{"text": "Kyiv", "annotation_id": None, "label": [
        {"start": 0, "end": 4, "text": "Kyiv", "labels": ["LOCATION"]}]},
        {"text": "Wagner", "annotator": 1, "annotation_id": None, "label": 3.5}]))
    with pytest.raises(InputError) as info:
        read_labelstudio(path, schema)
    assert info.value.task == "#1" and info.value.field == "label"
