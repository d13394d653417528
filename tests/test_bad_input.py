"""Bad input gets a message, never a traceback, never a silent loss (issue 17), by class.

Each class of the issue has examples here that are not the ones the issue names, so that
the tests pin the class and not its first example. Through the CLI, a refusal is exit 2 with
``conflict-ie: error:`` and the file, task and field named, and never a traceback.
"""

import json

import pytest

from conflict_ie.cli import main
from conflict_ie.conll import read_conll
from conflict_ie.corpus import deduplicate, load_corpus, split_documents
from conflict_ie.config import SplitSpec
from conflict_ie.documents import Document, Provenance
from conflict_ie.errors import ConfigError, InputError
from conflict_ie.labelstudio import choose_annotation, read_labelstudio
from factories import TEXT, choice, good_task, region, relation


def task(i, text=None):
    """good_task(i) with a text of its own: the regions are at its start, so their offsets hold."""
    t = good_task(i)
    t["data"]["text"] = text if text is not None else TEXT + f" Report {i}."
    return t


def dump(path, tasks):
    path.write_text(json.dumps(tasks), encoding="utf-8")
    return path


def cli(*argv, capsys):
    rc = main(list(map(str, argv)))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def build(tmp_path, capsys, *inputs, extra=()):
    args = ["corpus", "build", "--out", tmp_path / "corpus", *extra]
    for value in inputs:
        args += ["--conll" if str(value).endswith((".conll", ".tsv", ".txt")) else "--input", value]
    return cli(*args, capsys=capsys)


def one_region_task(text, start, end, label="LOCATION", **value):
    item = region("r", start, end, text, label)
    item["value"].update(value)
    return {"id": 5, "data": {"text": text}, "annotations": [{"id": 1, "result": [item]}]}


# ---------------------------------------------------------------- 1. one article in two places
def test_1_a_file_given_as_train_and_validation_is_refused(tmp_path, capsys):
    a = dump(tmp_path / "a.json", [task(1), task(2)])
    rc, err = build(tmp_path, capsys, f"train={a}", f"validation={a}")
    assert rc == 2
    assert "2 document(s) given twice" in err
    assert f"{a}, task 1 (train) has the same id as {a}, task 1 (validation)" in err
    assert not (tmp_path / "corpus").exists()


def test_1_a_copy_under_new_task_ids_is_caught_by_its_text(tmp_path, capsys):
    a = dump(tmp_path / "a.json", [task(1), task(2)])
    b = dump(tmp_path / "b.json", [task(7, text=task(2)["data"]["text"] + "\n")])  # same article, a new id
    rc, err = build(tmp_path, capsys, f"train={a}", f"test={b}")
    assert rc == 2 and f"{a}, task 2 (train) has the same text as {b}, task 7 (test)" in err


def test_1_a_repeat_inside_one_file_is_refused_in_ratio_mode(tmp_path, capsys):
    text = task(3)["data"]["text"]
    a = dump(tmp_path / "a.json", [task(1), task(3), task(4, text=text.replace("Report 3.", "Report\n 3. "))])
    rc, err = build(tmp_path, capsys, a)
    assert rc == 2 and f"{a}, task 4 has the same text as {a}, task 3" in err


def test_1_lenient_drops_the_training_copy_and_counts_it(tmp_path, capsys):
    a = dump(tmp_path / "a.json", [task(1), task(2), task(3)])
    b = dump(tmp_path / "b.json", [task(2), task(9)])
    rc, err = build(tmp_path, capsys, f"train={a}", f"test={b}", extra=["--lenient"])
    assert rc == 0, err
    assert "dropped 1 duplicate document(s): duplicate_id=1" in err
    corpus, _ = load_corpus(tmp_path / "corpus")
    assert sorted(corpus["train"]["id"]) == ["1", "3"] and sorted(corpus["test"]["id"]) == ["2", "9"]


def test_1_conll_documents_repeated_in_two_files(tmp_path, capsys):
    body = "Kyiv B-LOCATION\nburns O\n"
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "a.conll").write_text(body)
    (tmp_path / "y" / "b.conll").write_text(body)
    rc, err = build(tmp_path, capsys, f"train={tmp_path / 'x' / 'a.conll'}", f"test={tmp_path / 'y' / 'b.conll'}")
    assert rc == 2 and "has the same text as" in err and "a.conll, document a-0001 (train)" in err


def test_1_deduplicate_is_the_one_check(tmp_path):
    a = Document("1", "Kyiv was hit.", provenance=Provenance(source="a.json", task_id="1"))
    b = Document("1", "Lviv was calm.", provenance=Provenance(source="b.json", task_id="1"))
    with pytest.raises(InputError, match=r"b\.json, task 1 has the same id but another text as a\.json, task 1"):
        deduplicate([a, b])
    kept, report = deduplicate({"train": [a], "validation": [b]}, lenient=True)
    assert kept == {"train": [], "validation": [b]} and report.dropped == {"duplicate_id": 1}
    # split_documents checks ids itself (the training config's inputs: go through it) and names both copies.
    with pytest.raises(InputError, match=r"b\.json, task 1 has the same id but another text as a\.json, task 1"):
        split_documents([a, b], SplitSpec())
    same_text = Document("2", "Kyiv was hit.")
    assert sum(map(len, split_documents([a, same_text], SplitSpec()).values())) == 2  # texts: deduplicate's job
    with pytest.raises(InputError, match="the same text"):
        deduplicate([a, same_text])


# ---------------------------------------------------------------- 2. CoNLL tokens are kept whole
def spans(doc):
    return [(doc.text[s.start:s.end], s.label) for s in doc.spans]


def test_2_tab_file_tokens_keep_their_spaces(tmp_path, schema):
    p = tmp_path / "a.tsv"
    p.write_text("Bandar Seri Begawan\tNNP NNP NNP\tB-LOCATION\nsaw\tVBD\tO\n5\u00a0000\tCD\tB-CASUALTY_FIGURE\n"
                 "people  \tNNS\tI-CASUALTY_FIGURE\nflee\tVB\tO\n")
    (doc,), report = read_conll(p, schema)
    assert doc.text == "Bandar Seri Begawan saw 5\u00a0000 people flee"
    assert spans(doc) == [("Bandar Seri Begawan", "LOCATION"), ("5\u00a0000 people", "CASUALTY_FIGURE")]
    assert report.separator == "tab" and report.n_tokens == 5


def test_2_space_file_splits_on_ascii_spaces_only(tmp_path, schema):
    p = tmp_path / "a.conll"
    p.write_text("1\u2009200 B-CASUALTY_FIGURE\ncivilians I-CASUALTY_FIGURE\nin O\nSão\u00a0Paulo B-LOCATION\n")
    (doc,), report = read_conll(p, schema)
    assert spans(doc) == [("1\u2009200 civilians", "CASUALTY_FIGURE"), ("São\u00a0Paulo", "LOCATION")]
    assert report.separator == "space"


# ---------------------------------------------------------------- 3. JSON_MIN errors name file, task and field
def min_row(**fields):
    text = "Two soldiers died in Sumy."
    row = {"id": 31, "text": text, "annotation_id": 4, "label": [
        {"start": 0, "end": 12, "text": "Two soldiers", "labels": ["CASUALTY_FIGURE"]},
        {"start": 21, "end": 25, "text": "Sumy", "labels": ["LOCATION"]}],
        "casualty_type": [{"start": 0, "end": 12, "text": "Two soldiers", "choices": ["killed"]}]}
    row.update(fields)
    return row


def test_3_json_min_labels_field_that_is_not_a_list_of_regions(tmp_path, schema):
    p = dump(tmp_path / "min.json", [min_row(label="CASUALTY_FIGURE")])
    with pytest.raises(InputError, match=r"min\.json, task 31: is a string, not a list of labelled regions "
                                         r"\(field label\)") as exc:
        read_labelstudio(p, schema, lenient=True)
    assert exc.value.field == "label"


def test_3_json_min_region_offsets_and_choices(tmp_path, schema):
    row = min_row()
    row["label"][1]["end"] = 25.5
    with pytest.raises(InputError, match=r"min\.json, task 31, region label-1: value\.end is 25\.5, not a whole "
                                         r"number \(field label\[1\]\.value\.end\)"):
        read_labelstudio(dump(tmp_path / "min.json", [row]), schema)
    row = min_row()
    row["casualty_type"][0]["start"] = False
    with pytest.raises(InputError, match=r"task 31: field 'casualty_type': the choice \['killed'\] has offsets "
                                         r"False-12, which are not whole numbers") as exc:
        read_labelstudio(dump(tmp_path / "min.json", [row]), schema)
    assert exc.value.field == "casualty_type"


def test_3_json_min_unparsable_time_names_the_field(schema):
    rows = [min_row(updated_at="2024-01-01"), min_row(updated_at="last week")]
    with pytest.raises(InputError, match=r"task 31: 'last week' is not an ISO 8601 time \(field updated_at\)"):
        read_labelstudio(rows, schema)


# ---------------------------------------------------------------- 4. malformed structure: named, exit 2
def _set(path, value):
    def apply(t):
        node = t
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return apply


STRUCTURE = [
    (("annotations",), "no annotations", "is a string, not a list of annotations (field annotations)"),
    (("annotations", 0), [1, 2], "is a list, not an annotation object (field annotations[0])"),
    (("annotations", 0, "result"), 7, "is a number, not a list of results (field annotations[0].result)"),
    (("annotations", 0, "result"), {"0": {}}, "is an object, not a list of results (field annotations[0].result)"),
    (("annotations", 0, "result", 1), "c1", "region #1: result is a string, not a result object "
                                            "(field annotations[0].result[1])"),
    (("annotations", 0, "result", 0, "value"), [0, 12], "region g1: value is a list, not an object "
                                                        "(field annotations[0].result[0].value)"),
    (("annotations", 0, "was_cancelled"), "false", "is a string ('false'), not true or false "
                                                   "(field annotations[0].was_cancelled)"),
    (("data",), ["text"], "'data' is a list, not an object"),
    (("meta",), "origin=test", "is a string, not an object (field meta)"),
    (("id",), [4], "task #0: task id is a list ([4]), not an integer or a string (field id)"),
    (("annotations", 0, "result", 0, "value", "start"), float("-inf"),
     "region g1: value.start is infinite, not a whole number (field annotations[0].result[0].value.start)"),
    (("annotations", 0, "result", 0, "value", "end"), float("nan"), "region g1: value.end is NaN, not a whole number"),
    (("data", "text"), "Wagner Group \ud800", "holds a lone surrogate"),
]


@pytest.mark.parametrize("path, value, message", STRUCTURE, ids=[".".join(map(str, s[0])) for s in STRUCTURE])
def test_4_malformed_structure_is_named_not_a_traceback(tmp_path, capsys, path, value, message):
    t = task(1)
    _set(path, value)(t)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps([t]))  # NaN and -Infinity written as JSON's non-standard literals, as some tools do
    rc, err = build(tmp_path, capsys, p)
    assert rc == 2 and f"conflict-ie: error: {p}" in err and message in err, err


def test_4_an_offset_of_1e400_in_the_file(tmp_path, capsys):
    p = tmp_path / "big.json"
    p.write_text(json.dumps([task(1)]).replace('"end": 52', '"end": 1e400'))
    rc, err = build(tmp_path, capsys, p)
    assert rc == 2 and "region l1: value.end is infinite, not a whole number" in err


def test_4_lenient_skips_a_malformed_task_and_counts_it(tmp_path, capsys):
    bad = task(2)
    bad["annotations"][0]["result"] = "oops"
    p = dump(tmp_path / "a.json", [task(1), bad])
    res = read_labelstudio(p, None, lenient=True)
    assert [d.id for d in res.documents] == ["1"] and res.report.skipped == {"malformed_result_list": 1}
    assert "task 2: is a string, not a list of results" in res.report.messages[0]


@pytest.mark.parametrize("option, value, message", [
    ("--policy", "Latest", "unknown annotation policy 'Latest'"),
    ("--policy", "annotator:", "unknown annotation policy 'annotator:'"),
    ("--ratios", "0.8,0.1,0.1", "--ratios is TRAIN/VALIDATION/TEST"),
    ("--ratios", "0.5/0.25/0.25/0", "--ratios is TRAIN/VALIDATION/TEST"),
    ("--ratios", "inf/0/0", "--ratios is TRAIN/VALIDATION/TEST"),
    ("--ratios", "1.2/-0.1/-0.1", "--ratios is TRAIN/VALIDATION/TEST"),
    ("--ratios", "0.5/0.2/0.2", "split ratios must be >= 0 and sum to 1"),
])
def test_4_bad_options_exit_2_before_reading(tmp_path, capsys, option, value, message):
    missing = tmp_path / "never-read.json"  # the option is refused before any input is opened
    rc, err = build(tmp_path, capsys, missing, extra=[option, value])
    assert rc == 2 and message in err and "never-read" not in err


def test_4_out_that_is_a_file_or_under_one(tmp_path, capsys):
    a = dump(tmp_path / "a.json", [task(1)])
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    for out, message in ((blocker, "is a file; give a folder"), (blocker / "corpus", f"cannot be made: {blocker} is a file")):
        rc, err = cli("corpus", "build", "--input", a, "--out", out, capsys=capsys)
        assert rc == 2 and message in err


def test_4_unknown_split_name_and_a_folder_as_input(tmp_path, capsys):
    a = dump(tmp_path / "a.json", [task(1)])
    rc, err = build(tmp_path, capsys, f"dev={a}")
    assert rc == 2 and "'dev' is not a split" in err
    rc, err = build(tmp_path, capsys, tmp_path)
    assert rc == 2 and "cannot read" in err


# ---------------------------------------------------------------- 5. white space at a span's edge
@pytest.mark.parametrize("text, start, end", [
    ("Shelling hit  Kharkiv overnight.", 12, 21),       # a leading space
    ("Shelling hit Kharkiv\n overnight.", 13, 21),      # a trailing new line
    ("Shelling hit Kharkiv\u00a0overnight.", 13, 21),   # a trailing no-break space
    ("\ufeffKharkiv was shelled.", 0, 8),               # the task text's BOM inside the span
])
def test_5_white_space_at_an_edge_is_refused_and_trimmed_when_lenient(text, start, end):
    t = one_region_task(text, start, end)
    with pytest.raises(InputError, match=r"task 5, region r: span .* begins or ends with white space"):
        read_labelstudio([t], None)
    res = read_labelstudio([t], None, lenient=True)
    (span,) = res.documents[0].spans
    assert text[span.start:span.end] == "Kharkiv"
    assert res.report.repaired == {"white_space_trimmed": 1} and not res.report.skipped


def test_5_a_span_of_only_white_space_is_dropped_even_when_lenient():
    text = "Kharkiv \u00a0\u2028 burned."
    t = one_region_task(text, 7, 10)
    with pytest.raises(InputError, match=r"region r: span 7-10 .* is only white space"):
        read_labelstudio([t], None)
    res = read_labelstudio([t], None, lenient=True)
    assert res.documents[0].spans == () and res.report.skipped == {"white_space_span": 1}


def test_5_conll_entity_with_a_blank_edge(tmp_path, schema):
    p = tmp_path / "a.tsv"
    p.write_text("the\tO\n\u00a0Wagner\tB-ARMED_GROUP\nGroup\tI-ARMED_GROUP\nleft\tO\n")
    with pytest.raises(InputError, match=r"a\.tsv: line 2: ARMED_GROUP entity '\\xa0Wagner Group' begins or ends "
                                         r"with white space"):
        read_conll(p, schema)
    (doc,), report = read_conll(p, schema, lenient=True)
    assert spans(doc) == [("Wagner Group", "ARMED_GROUP")] and report.repaired == {"white_space_trimmed": 1}


# ---------------------------------------------------------------- 6. result types as Label Studio writes them
@pytest.mark.parametrize("kind, message", [
    ("LABELS", "result type 'LABELS' is not Label Studio's spelling; did you mean 'labels'?"),
    ("label", "result type 'label' is not a Label Studio result type"),
    (None, "result has no type"),
    (3, "result type 3 is not a Label Studio result type"),
])
def test_6_unknown_result_types_are_refused_naming_the_region(tmp_path, schema, kind, message):
    t = task(1)
    t["annotations"][0]["result"][3]["type"] = kind  # region l1
    p = dump(tmp_path / "a.json", [t])
    with pytest.raises(InputError) as exc:
        read_labelstudio(p, schema)
    assert str(exc.value).startswith(f"{p}, task 1, region l1: {message}")
    assert exc.value.field == "annotations[0].result[3].type"
    res = read_labelstudio(p, schema, lenient=True)
    assert res.report.skipped == {"unknown_result_type": 1, "unknown_endpoint": 1}  # and LOCATED_IN c1 -> l1


def test_6_per_region_choices_mis_cased_are_refused_once(schema):
    t = task(1)
    t["annotations"][0]["result"][2]["type"] = "Choices"  # c1's casualty_type
    with pytest.raises(InputError, match="region c1: result type 'Choices' is not Label Studio's spelling"):
        read_labelstudio([t], schema)
    res = read_labelstudio([t], schema, lenient=True)
    # c1 is counted once (the mis-cased choice, then its missing casualty_type), and its two relations go with it.
    assert res.report.skipped == {"unknown_result_type": 1, "unknown_endpoint": 2}


def test_6_other_label_studio_tags_are_read_past_with_a_named_warning(schema):
    t = task(1)
    t["annotations"][0]["result"].append({"id": "n1", "type": "textarea", "from_name": "notes",
                                          "value": {"text": ["check the figure"]}})
    res = read_labelstudio([t], schema)
    assert len(res.documents[0].spans) == 4
    assert "<tasks>, task 1, region n1: result of type 'textarea' ('notes') is not used" in res.report.warnings


# ---------------------------------------------------------------- 7. offsets are whole numbers
@pytest.mark.parametrize("key, value, why", [
    ("start", False, "a boolean (False), not a whole number"),
    ("end", 7.25, "7.25, not a whole number"),
    ("start", "0", "a string ('0'), not a whole number"),
    ("end", None, "null (None), not a whole number"),
    ("end", [7], "a list ([7]), not a whole number"),
])
def test_7_offsets_that_are_not_whole_numbers(key, value, why):
    t = one_region_task("Kharkiv burned.", 0, 7)
    t["annotations"][0]["result"][0]["value"][key] = value
    with pytest.raises(InputError, match=rf"region r: value\.{key} is {__import__('re').escape(why)}"):
        read_labelstudio([t], None)
    res = read_labelstudio([t], None, lenient=True)
    assert res.documents[0].spans == () and res.report.skipped == {"bad_offset": 1}


def test_7_integral_floats_are_offsets():
    t = one_region_task("Kharkiv burned.", 0, 7)
    t["annotations"][0]["result"][0]["value"].update(start=0.0, end=7.0)
    (span,) = read_labelstudio([t], None).documents[0].spans
    assert (span.start, span.end) == (0, 7) and type(span.start) is int


# ---------------------------------------------------------------- 8. relation direction and self-loops
@pytest.mark.parametrize("direction", ["Left", "", None, "both", 1, ["right"]])
def test_8_a_direction_other_than_right_left_bi_is_refused(schema, direction):
    t = task(1)
    t["annotations"][0]["result"][5]["direction"] = direction  # c1 -> g1 PERPETRATOR
    with pytest.raises(InputError, match=r"region c1: relation PERPETRATOR c1 -> g1: direction .* is not 'right', "
                                         r"'left' or 'bi'"):
        read_labelstudio([t], schema)
    res = read_labelstudio([t], schema, lenient=True)
    assert res.report.skipped == {"bad_direction": 1}
    assert [(r.head, r.tail) for r in res.documents[0].relations] == [("c1", "l1")]


@pytest.mark.parametrize("direction", ["right", "left", "bi"])
def test_8_a_relation_from_a_region_to_itself_is_refused(schema, direction):
    t = task(1)
    t["annotations"][0]["result"].append(relation("g1", "g1", "FIGHTS", direction=direction))
    with pytest.raises(InputError, match="region g1: relation FIGHTS goes from region g1 to itself"):
        read_labelstudio([t], schema)


def test_8_a_relation_without_an_endpoint_is_named(schema):
    t = task(1)
    del t["annotations"][0]["result"][6]["to_id"]
    with pytest.raises(InputError, match=r"relation's to_id is null, not a region id "
                                         r"\(field annotations\[0\]\.result\[6\]\.to_id\)"):
        read_labelstudio([t], schema)


# ---------------------------------------------------------------- 9. byte-order marks
def test_9_labelstudio_file_with_bom_and_crlf(tmp_path, schema):
    p = tmp_path / "bom.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps([task(1)], indent=1).replace("\n", "\r\n").encode())
    assert len(read_labelstudio(p, schema).documents[0].spans) == 4


def test_9_task_text_that_begins_with_a_bom_keeps_it_and_its_offsets(schema):
    text = "\ufeffWagner Group fighters attacked."
    t = {"id": 1, "data": {"text": text}, "annotations": [{"id": 1, "result": [region("g", 1, 13, text,
                                                                                        "ARMED_GROUP")]}]}
    (doc,) = read_labelstudio([t], schema).documents
    assert doc.text == text and doc.text[doc.spans[0].start:doc.spans[0].end] == "Wagner Group"


def test_9_conll_bom_at_the_start_and_after_concatenation(tmp_path, schema):
    p = tmp_path / "cat.conll"
    p.write_bytes(b"\xef\xbb\xbfWagner B-ARMED_GROUP\nleft O\n\n\xef\xbb\xbf-DOCSTART- O\n\n"
                  b"\xef\xbb\xbfKyiv B-LOCATION\n")
    docs, report = read_conll(p, schema)
    assert [spans(d) for d in docs] == [[("Wagner", "ARMED_GROUP")], [("Kyiv", "LOCATION")]]
    assert report.repaired == {"byte_order_mark": 2}


# ---------------------------------------------------------------- 10. "latest" compares times as times
def _annotated(*times, key="updated_at"):
    return {"annotations": [{"id": i + 1, key: when, "result": []} for i, when in enumerate(times)]}


@pytest.mark.parametrize("times, policy, expected", [
    (("2024-03-01T10:00:00+05:00", "2024-03-01T06:00:00Z"), "latest", 2),      # 05:00 UTC before 06:00 UTC
    (("2024-03-01T06:00:00.500000Z", "2024-03-01T06:00:00Z"), "latest", 1),    # fractions of a second count
    (("2024-03-01T07:00:00", "2024-03-01T06:30:00-01:00"), "latest", 2),       # naive is UTC; 07:30 UTC wins
    (("2024-03-01T23:00:00-02:00", "2024-03-02T00:30:00+00:00"), "ground_truth", 1),  # no ground truth: latest
])
def test_10_times_with_offsets(times, policy, expected):
    assert choose_annotation(_annotated(*times), policy)["id"] == expected


def test_10_first_compares_created_at_as_times():
    t = _annotated("2024-03-01T09:00:00+03:00", "2024-03-01T07:00:00Z", key="created_at")
    assert choose_annotation(t, "first")["id"] == 1  # 06:00 UTC


def test_10_a_time_that_is_not_a_time_is_named_when_it_decides():
    with pytest.raises(InputError, match=r"'1st of March' is not an ISO 8601 time \(field annotations\[1\]"
                                         r"\.updated_at\)"):
        choose_annotation(_annotated("2024-03-01T09:00:00Z", "1st of March"), "latest")
    assert choose_annotation(_annotated("1st of March"), "latest")["id"] == 1  # one annotation: nothing to compare


# ---------------------------------------------------------------- 11. messages and counts
@pytest.mark.parametrize("codec, name", [("utf-16-be", "UTF-16-BE"), ("utf-32-le", "UTF-32-LE"),
                                         ("utf-16", "UTF-16-LE")])
def test_11_wide_encodings_are_named(tmp_path, schema, codec, name):
    p = tmp_path / "wide.json"
    p.write_bytes(json.dumps([task(1)]).encode(codec))
    with pytest.raises(InputError, match=rf"wide\.json: {name} text, not UTF-8"):
        read_labelstudio(p, schema)
    c = tmp_path / "wide.conll"
    c.write_bytes("Kyiv B-LOCATION\n".encode(codec))
    with pytest.raises(InputError, match=rf"wide\.conll: {name} text, not UTF-8"):
        read_conll(c, schema)


def test_11_a_choices_string_is_one_message(schema):
    t = task(1)
    t["annotations"][0]["result"][2]["value"]["choices"] = "killed"
    with pytest.raises(InputError, match=r"region c1: casualty_type value\.choices is the string 'killed', not a "
                                         r"list of choices; write \['killed'\]"):
        read_labelstudio([t], schema)


def test_11_lenient_counts_each_region_once(schema):
    t = task(1)
    result = t["annotations"][0]["result"]
    result[1]["value"]["labels"] = ["CASUALTY_FIGURE", "WEAPON"]  # c1: two labels; its choice is then an orphan
    result[4]["value"]["labels"] = "OFFICIAL"                      # o1: a string
    res = read_labelstudio([t], schema, lenient=True)
    assert res.report.skipped == {"region_label_count": 1, "bad_labels": 1, "unknown_endpoint": 2}
    assert len(res.report.messages) == 4


@pytest.mark.parametrize("breaker", ["\u2028", "\x85", "\x0c", "\x0b", "\x1e", "\u2029"])
def test_11_conll_line_numbers_are_the_editors(tmp_path, schema, breaker):
    p = tmp_path / "a.conll"
    p.write_text(f"Kyiv B-LOCATION\nand{breaker}more O\n\nParis B-PLACE\n")
    with pytest.raises(InputError, match=r"a\.conll: line 4: label 'PLACE'"):
        read_conll(p, schema)


# ---------------------------------------------------------------- 12. nothing to build a corpus from
def _cancelled(i):
    t = task(i)
    t["annotations"][0]["was_cancelled"] = True
    return t


def _drafts_only(i):
    t = task(i)
    t["drafts"], t["annotations"] = [{"id": 1, "result": t["annotations"][0]["result"]}], []
    return t


@pytest.mark.parametrize("tasks, found", [
    ([_cancelled(1), _cancelled(2), _drafts_only(3)],
     "3 task(s), none usable: 2 with only cancelled annotations, 1 with only drafts"),
    ([{"id": 1, "data": {"text": "x"}, "predictions": [{"result": []}]}], "1 task(s), none usable: 1 with no annotation"),
    ([{"id": 4, "text": "Kyiv.", "annotation_id": None}], "1 task(s), none usable: 1 with no annotation"),  # JSON_MIN
])
def test_12_an_export_with_no_usable_annotation(tmp_path, capsys, tasks, found):
    p = dump(tmp_path / "a.json", tasks)
    rc, err = build(tmp_path, capsys, p)
    assert rc == 2 and f"conflict-ie: error: {p}: no documents to read: {found}" in err
    assert read_labelstudio(p, None).documents == []  # the library reads it; the CLI refuses it


def test_12_no_annotation_by_the_annotator_asked_for(tmp_path, capsys):
    p = dump(tmp_path / "a.json", [task(1)])
    rc, err = build(tmp_path, capsys, p, extra=["--policy", "annotator:someone@example.org"])
    assert rc == 2 and "1 with no annotation by the annotator the policy asks for" in err


def test_12_one_empty_input_among_good_ones(tmp_path, capsys):
    a = dump(tmp_path / "a.json", [task(1)])
    empty = dump(tmp_path / "empty.json", [])
    rc, err = build(tmp_path, capsys, f"train={a}", f"test={empty}")
    assert rc == 2 and f"{empty}: no documents to read: no tasks at all (an empty list)" in err


@pytest.mark.parametrize("body, found", [("", "the file is empty or blank"), ("\n \n\t\n", "the file is empty or blank"),
                                         ("-DOCSTART-\tO\n\n", "1 -DOCSTART- line(s), the rest blank")])
def test_12_conll_without_token_lines(tmp_path, capsys, body, found):
    p = tmp_path / "a.conll"
    p.write_text(body)
    rc, err = build(tmp_path, capsys, p)
    assert rc == 2 and f"{p}: no documents to read: no token lines" in err and found in err


def test_12_evaluate_refuses_an_empty_gold_set(tmp_path, capsys):
    p = dump(tmp_path / "gold.json", [_cancelled(1)])
    rc, err = cli("evaluate", "--model", tmp_path / "no-model", "--input", p, capsys=capsys)
    assert rc == 2 and "no documents to read: 1 task(s), none usable" in err


def test_12_require_documents_for_library_callers(schema):
    res = read_labelstudio([_cancelled(1)], schema)
    with pytest.raises(InputError, match=r"<tasks>: no documents to read: 1 task\(s\), none usable"):
        res.require_documents()
    assert read_labelstudio([task(1)], schema).require_documents()[0].id == "1"


def test_choice_and_region_helpers_still_build_good_tasks(schema):
    # The factories this file leans on: a sanity check that a good task is read whole.
    t = task(1)
    assert t["annotations"][0]["result"][2] == choice("c1", 29, 41, t["data"]["text"], "killed")
    assert len(read_labelstudio([t], schema).documents[0].spans) == 4


@pytest.mark.parametrize("tasks, field", [([["not a task"]], None), ([{"id": 4, "data": "text"}], "data.text"),
                                          ([{"id": 5, "data": {"body": "x"}}], "data.text")])
def test_agreement_names_a_malformed_task(tmp_path, tasks, field):
    from conflict_ie.agreement import agreement
    from conflict_ie.schema import LabelSchema

    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks[0] if isinstance(tasks[0], list) else tasks))
    with pytest.raises(InputError, match="task") as info:
        agreement(path, LabelSchema.load("conflict"))
    assert str(path) in str(info.value) and (field is None or field in str(info.value))


def test_1_training_from_config_inputs_refuses_a_repeated_article(tmp_path):
    """``conflict-ie train`` building its own corpus from ``inputs:`` checks repeats as corpus build does."""
    from conflict_ie.config import TrainConfig
    from conflict_ie.run import prepare_corpus

    export = tmp_path / "export.json"
    export.write_text(json.dumps([good_task(1), good_task(2)]))  # two task ids, one article
    config = TrainConfig.from_dict({"inputs": [str(export)]})
    with pytest.raises(InputError, match="given twice") as info:
        prepare_corpus(config, None, tmp_path / "run")
    assert "task 1" in str(info.value) and "task 2" in str(info.value)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(InputError, match="no documents"):
        prepare_corpus(TrainConfig.from_dict({"inputs": [str(empty)]}), None, tmp_path / "run")
