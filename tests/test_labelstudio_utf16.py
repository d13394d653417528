"""Offsets that older Label Studio versions wrote in UTF-16 code units are repaired, and only those.

The fixture ``data/labelstudio_utf16.json`` is a hand-written full JSON export: two tasks whose
texts hold emoji (each one code point, two UTF-16 units) before, between and inside regions, with
every region's ``start``/``end`` counted in UTF-16 units, per-region ``casualty_type`` choices and
relations. The code-point offsets below were counted by hand, character by character:

    task 11  "🔴 Rebel fighters killed 7 herders near Ngala 🙏 after mortar fire, said Commander Musa Idris."
             🔴 is code point 0 (units 0-1), 🙏 is code point 45 (units 46-47): a region after 🔴 moves
             back by 1, after 🙏 by 2.
    task 12  "Kadugli 📢: the 🐺 Wolves Brigade shelled the market with rockets; 3 children were injured."
             📢 is code point 8, 🐺 code point 15 and the first character of the ARMED_GROUP region;
             "Kadugli" (0-7) comes before any emoji and needs no repair.
"""

import copy
import json
from pathlib import Path

import pytest

from conflict_ie.errors import InputError
from conflict_ie.labelstudio import read_labelstudio, utf16_to_code_points

FIXTURE = Path(__file__).parent / "data" / "labelstudio_utf16.json"

EXPECTED = {
    "11": [("a1grp", 2, 16, "ARMED_GROUP", {}, "Rebel fighters"),
           ("a1cas", 24, 33, "CASUALTY_FIGURE", {"casualty_type": "killed"}, "7 herders"),
           ("a1loc", 39, 44, "LOCATION", {}, "Ngala"),
           ("a1wpn", 53, 59, "WEAPON", {}, "mortar"),
           ("a1off", 71, 91, "OFFICIAL", {}, "Commander Musa Idris")],
    "12": [("b2loc", 0, 7, "LOCATION", {}, "Kadugli"),
           ("b2grp", 15, 31, "ARMED_GROUP", {}, "🐺 Wolves Brigade"),
           ("b2wpn", 56, 63, "WEAPON", {}, "rockets"),
           ("b2cas", 65, 75, "CASUALTY_FIGURE", {"casualty_type": "injured"}, "3 children")],
}


def tasks():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_fixture_offsets_really_are_utf16():
    # Guard the fixture itself: every region's UTF-16 slice is its value.text and at least one code-point
    # slice is not, else the tests below would not test the repair.
    wrong_as_code_points = 0
    for task in tasks():
        text = task["data"]["text"]
        units = text.encode("utf-16-le")
        for item in task["annotations"][0]["result"]:
            if "value" in item:
                v = item["value"]
                assert units[2 * v["start"]:2 * v["end"]].decode("utf-16-le") == v["text"]
                wrong_as_code_points += text[v["start"]:v["end"]] != v["text"]
    assert wrong_as_code_points == 10  # 9 regions and 2 choices, all but "Kadugli"


@pytest.mark.parametrize("lenient", [False, True])
def test_repaired_spans_equal_hand_counted_code_points(schema, lenient):
    res = read_labelstudio(tasks(), schema, lenient=lenient)
    got = {d.id: [(s.id, s.start, s.end, s.label, dict(s.attributes), d.text[s.start:s.end]) for s in d.spans]
           for d in res.documents}
    assert got == EXPECTED
    assert res.report.skipped == {}


def test_relations_survive_the_repair(schema):
    docs = {d.id: d for d in read_labelstudio(tasks(), schema).documents}
    assert {(r.head, r.tail, r.label) for r in docs["11"].relations} == {
        ("a1cas", "a1grp", "PERPETRATOR"), ("a1cas", "a1loc", "LOCATED_IN"), ("a1off", "a1grp", "AFFILIATED_WITH")}
    assert {(r.head, r.tail, r.label) for r in docs["12"].relations} == {
        ("b2cas", "b2grp", "PERPETRATOR"), ("b2cas", "b2loc", "LOCATED_IN"), ("b2grp", "b2loc", "LOCATED_IN")}


def test_repairs_are_counted_per_region_and_name_the_task(schema):
    report = read_labelstudio(FIXTURE, schema).report
    assert report.repaired == {"utf16_offsets_repaired": 8}  # 5 regions in task 11, 3 in task 12
    repairs = [w for w in report.warnings if "UTF-16" in w]
    assert len(repairs) == 8
    assert sum("labelstudio_utf16.json, task 11, region " in w for w in repairs) == 5
    assert sum(", task 12, region " in w for w in repairs) == 3
    assert not any("region b2loc" in w for w in repairs)  # before any emoji: nothing to repair
    assert "task 11, region a1off: offsets 73-93 are UTF-16 code units" in next(w for w in repairs if "a1off" in w)
    assert "repaired: utf16_offsets_repaired=8" in report.summary()


def _with_value(task_index, rid, **change):
    data = tasks()
    for item in data[task_index]["annotations"][0]["result"]:
        if item.get("id") == rid and item["type"] == "labels":
            item["value"].update(change)
    return data


def test_mismatch_that_utf16_does_not_explain_is_refused(schema):
    # The UTF-16 slice at 55-61 is "mortar"; a value.text of "rifle" matches neither reading.
    with pytest.raises(InputError, match=r"task 11, region a1wpn: value.text 'rifle' differs from the text at 55-61"):
        read_labelstudio(_with_value(0, "a1wpn", text="rifle"), schema)


def test_offsets_off_by_one_in_both_readings_are_refused(schema):
    # One unit too far: UTF-16 gives "ortar " and code points "rtar f"; neither is "mortar".
    with pytest.raises(InputError, match=r"region a1wpn: value.text 'mortar' differs"):
        read_labelstudio(_with_value(0, "a1wpn", start=56, end=62), schema)


def test_offset_inside_a_surrogate_pair_is_not_repaired(schema):
    # Unit 17 is the second half of 🐺 (units 16-17): no UTF-16 writer puts a boundary there.
    res = read_labelstudio(_with_value(1, "b2grp", start=17, end=33, text="Wolves Brigade"), schema, lenient=True)
    assert "b2grp" not in {s.id for s in res.documents[1].spans}
    # The two relations that end at b2grp go with it.
    assert res.report.skipped == {"text_mismatch": 1, "unknown_endpoint": 2}
    assert res.report.repaired == {"utf16_offsets_repaired": 7}  # task 11's five, b2wpn and b2cas


def test_lenient_counts_the_unexplained_mismatch_and_repairs_the_rest(schema):
    res = read_labelstudio(_with_value(0, "a1wpn", text="rifle"), schema, lenient=True)
    assert res.report.skipped == {"text_mismatch": 1}
    assert res.report.repaired == {"utf16_offsets_repaired": 7}
    assert [s.id for s in res.documents[0].spans] == ["a1grp", "a1cas", "a1loc", "a1off"]


def test_text_without_astral_characters_is_never_reinterpreted(schema):
    data = copy.deepcopy(tasks()[:1])
    data[0]["data"]["text"] = data[0]["data"]["text"].replace("🔴", "*").replace("🙏", "+")
    with pytest.raises(InputError, match=r"region a1grp: value.text 'Rebel fighters' differs"):
        read_labelstudio(data, schema)


def test_white_space_collapsed_value_text_still_repairs(schema):
    data = tasks()[:1]
    text = data[0]["data"]["text"].replace("Musa Idris", "Musa  Idris")  # the UI collapses runs of spaces
    data[0]["data"]["text"] = text
    for item in data[0]["annotations"][0]["result"]:
        if item.get("id") == "a1off":
            item["value"]["end"] = 94  # one more unit for the extra space; value.text keeps one space
    res = read_labelstudio(data, schema)
    (off,) = [s for s in res.documents[0].spans if s.id == "a1off"]
    assert (off.start, off.end, text[off.start:off.end]) == (71, 92, "Commander Musa  Idris")


def test_utf16_to_code_points():
    text = "a🙂b𠮷c"  # 🙂 and 𠮷 (an astral CJK ideograph) take two units each
    assert [utf16_to_code_points(text, 0, u) for u in (1, 3, 4, 6, 7)] == [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]
    assert utf16_to_code_points(text, 2, 7) is None and utf16_to_code_points(text, 0, 8) is None
