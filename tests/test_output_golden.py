"""Every ``predict --format`` against a golden file, byte for byte.

Two hand-made predictions (offsets counted by hand; every score a binary fraction, so that sums,
means and two-decimal renderings are exact and can be checked by eye):

- ``a.txt``: "Rebels killed at least 9 soldiers in Kidal, Governor Amadou Traore said."
  four entities (one CASUALTY_FIGURE with ``casualty_type=killed``), three directed relations
  and one casualty record (9, open-ended, perpetrator Rebels, location Kidal);
- ``news/b.txt``: "Government troops fought the Sahel Brigade near Sévaré — about 40 people fled."
  non-ASCII text, a symmetric FIGHTS relation, an approximate casualty record without perpetrator.

The golden files under ``tests/golden/predictions.*`` were generated once and then read line by
line against these predictions (see the assertions below that do not use the golden files).
To regenerate them after a deliberate format change, run

    UPDATE_GOLDEN=1 HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/test_output_golden.py -q -p no:cacheprovider

then read the diff (``git diff tests/golden``) before committing it.
"""

import csv
import io
import json
import os
from pathlib import Path

import pytest

from conflict_ie.output import FORMATS, write_predictions
from conflict_ie.results import CasualtyRecord, Entity, PredictedRelation, Prediction

GOLDEN = Path(__file__).parent / "golden"
FILES = {"table": "predictions.table.txt", "json": "predictions.json", "jsonl": "predictions.jsonl",
         "labelstudio": "predictions.labelstudio.json", "casualties": "predictions.casualties.csv"}

A = "Rebels killed at least 9 soldiers in Kidal, Governor Amadou Traore said."
B = "Government troops fought the Sahel Brigade near Sévaré — about 40 people fled."


def predictions():
    rebels = Entity("ARMED_GROUP", 0, 6, "Rebels", 0.875, "e1")
    soldiers = Entity("CASUALTY_FIGURE", 14, 33, "at least 9 soldiers", 0.75, "e2", (("casualty_type", "killed"),))
    kidal = Entity("LOCATION", 37, 42, "Kidal", 1.0, "e3")
    traore = Entity("OFFICIAL", 44, 66, "Governor Amadou Traore", 0.625, "e4")
    a = Prediction(A, (rebels, soldiers, kidal, traore), (
        PredictedRelation(soldiers, rebels, "PERPETRATOR", 0.5),
        PredictedRelation(soldiers, kidal, "LOCATED_IN", 0.75),
        PredictedRelation(traore, kidal, "AFFILIATED_WITH", 0.25),
    ), (CasualtyRecord("at least 9 soldiers", 14, 33, 9, None, False, "killed", "Kidal", "Rebels", 0.75),))
    troops = Entity("ARMED_GROUP", 0, 17, "Government troops", 0.5, "f1")
    brigade = Entity("ARMED_GROUP", 29, 42, "Sahel Brigade", 0.75, "f2")
    sevare = Entity("LOCATION", 48, 54, "Sévaré", 1.0, "f3")
    people = Entity("CASUALTY_FIGURE", 57, 72, "about 40 people", 0.875, "f4", (("casualty_type", "displaced"),))
    b = Prediction(B, (troops, brigade, sevare, people), (
        PredictedRelation(troops, brigade, "FIGHTS", 0.625, symmetric=True),
        PredictedRelation(people, sevare, "LOCATED_IN", 0.5),
    ), (CasualtyRecord("about 40 people", 57, 72, 40, 40, True, "displaced", "Sévaré", None, 0.875),))
    return ["a.txt", "news/b.txt"], [a, b]


def render(fmt):
    buf = io.StringIO()
    write_predictions(buf, *predictions(), fmt)
    return buf.getvalue()


def test_hand_made_offsets_are_right():
    for p in predictions()[1]:
        assert [p.text[e.start:e.end] for e in p.entities] == [e.text for e in p.entities]
        assert [p.text[c.start:c.end] for c in p.casualties] == [c.text for c in p.casualties]


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_matches_golden_file(fmt):
    path = GOLDEN / FILES[fmt]
    out = render(fmt)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(out.encode("utf-8"))
    assert out.encode("utf-8") == path.read_bytes()


def test_every_format_has_a_golden_file():
    assert set(FILES) == set(FORMATS)


# The checks below read the golden files' content against the predictions, independently of the writer,
# so that a wrong golden file (regenerated without reading) fails too.

def test_golden_table_reads_right():
    lines = (GOLDEN / FILES["table"]).read_text(encoding="utf-8").split("\n")
    assert lines[0] == "# a.txt: 4 entities"
    assert lines[1].split() == ["start", "end", "label", "score", "text"]
    assert lines[2].split() == ["0", "6", "ARMED_GROUP", "0.88", "Rebels"]  # 0.875 rounds half to even: 0.88
    assert lines[3].split() == ["14", "33", "CASUALTY_FIGURE", "0.75", "at", "least", "9", "soldiers",
                                "casualty_type=killed"]
    assert "  'at least 9 soldiers' --PERPETRATOR--> 'Rebels'  (0.50)" in lines
    assert "  'Governor Amadou Traore' --AFFILIATED_WITH--> 'Kidal'  (0.25)" in lines
    assert ("  'at least 9 soldiers': killed, min=9 max=None, location=Kidal, perpetrator=Rebels") in lines
    assert "# news/b.txt: 4 entities" in lines
    assert "  'Government troops' <--FIGHTS--> 'Sahel Brigade'  (0.62)" in lines  # 0.625 -> 0.62 (binary, even)
    assert "  'about 40 people': displaced, min=40 max=40 (approx.), location=Sévaré, perpetrator=None" in lines
    assert lines.count("3 relations") == 1 and lines.count("2 relations") == 1
    assert lines.count("1 casualty records") == 2


def test_golden_json_and_jsonl_read_right():
    docs = json.loads((GOLDEN / FILES["json"]).read_text(encoding="utf-8"))
    lines = (GOLDEN / FILES["jsonl"]).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == docs
    a, b = docs
    assert (a["file"], b["file"]) == ("a.txt", "news/b.txt")
    assert a["entities"][1] == {"label": "CASUALTY_FIGURE", "start": 14, "end": 33, "text": "at least 9 soldiers",
                                "score": 0.75, "id": "e2", "attributes": {"casualty_type": "killed"}}
    assert a["relations"][0] == {"head": "e2", "head_text": "at least 9 soldiers", "tail": "e1", "tail_text": "Rebels",
                                 "label": "PERPETRATOR", "score": 0.5, "symmetric": False}
    assert b["relations"][0]["symmetric"] is True and b["relations"][0]["label"] == "FIGHTS"
    assert a["casualties"] == [{"text": "at least 9 soldiers", "start": 14, "end": 33, "count_min": 9,
                                "count_max": None, "approximate": False, "casualty_type": "killed",
                                "location": "Kidal", "perpetrator": "Rebels", "score": 0.75}]
    assert b["text"] == B and "Sévaré" in (GOLDEN / FILES["json"]).read_text(encoding="utf-8")  # not \u00e9 escapes


def test_golden_labelstudio_reads_right(schema):
    from conflict_ie.labelstudio import read_labelstudio

    tasks = json.loads((GOLDEN / FILES["labelstudio"]).read_text(encoding="utf-8"))
    assert [t["data"] for t in tasks] == [{"text": A, "source_file": "a.txt"}, {"text": B, "source_file": "news/b.txt"}]
    pa, pb = (t["predictions"][0] for t in tasks)
    assert pa["score"] == (0.875 + 0.75 + 1.0 + 0.625) / 4 == 0.8125 and pb["score"] == 0.78125
    assert pa["model_version"] == "conflict_ie"
    choice = [r for r in pa["result"] if r["type"] == "choices"]
    assert choice == [{"id": "e2", "from_name": "casualty_type", "to_name": "text", "type": "choices",
                       "value": {"start": 14, "end": 33, "text": "at least 9 soldiers", "choices": ["killed"]}}]
    rels_b = [r for r in pb["result"] if r["type"] == "relation"]
    assert rels_b == [
        {"from_id": "f1", "to_id": "f2", "type": "relation", "direction": "bi", "labels": ["FIGHTS"], "score": 0.625},
        {"from_id": "f4", "to_id": "f3", "type": "relation", "direction": "right", "labels": ["LOCATED_IN"],
         "score": 0.5}]
    assert [r["score"] for r in pa["result"] if r["type"] == "labels"] == [0.875, 0.75, 1.0, 0.625]
    # The predictions read back as documents: FIGHTS is drawn "bi", which the conflict schema declares directed,
    # so the reader reports it; every other region and relation is valid.
    as_tasks = [{"id": i, "data": t["data"], "annotations": [{"id": i, "result": t["predictions"][0]["result"]}]}
                for i, t in enumerate(tasks, 1)]
    res = read_labelstudio(as_tasks, schema, lenient=True)
    assert res.report.skipped == ({} if schema.relation("FIGHTS").symmetric else {"bidirectional_relation": 1})
    assert [len(d.spans) for d in res.documents] == [4, 4]


def test_golden_casualties_csv_reads_right():
    with (GOLDEN / FILES["casualties"]).open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["file", "text", "start", "end", "count_min", "count_max", "approximate", "casualty_type", "location",
         "perpetrator", "score"],
        ["a.txt", "at least 9 soldiers", "14", "33", "9", "", "False", "killed", "Kidal", "Rebels", "0.75"],
        ["news/b.txt", "about 40 people", "57", "72", "40", "40", "True", "displaced", "Sévaré", "", "0.875"],
    ]


def test_unknown_format_and_name_count_are_refused():
    with pytest.raises(ValueError, match=r"unknown output format 'csv'; use one of \['table'"):
        render("csv")
    names, preds = predictions()
    with pytest.raises(ValueError, match="1 name"):
        write_predictions(io.StringIO(), names[:1], preds, "json")
