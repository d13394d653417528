"""Property tests: structurally random Label Studio exports and CoNLL files never make a reader crash.

Either the reader returns documents that keep every promise (each span is ``text[start:end]``,
non-empty, without white space at an edge, of a schema label, not overlapping another; every
relation joins two different existing spans with a label and pair the schema allows), or it
raises a :class:`ConflictIEError`, which for a list of tasks names the task. Never another
exception. ``max_examples`` is kept near 200 so that the default test run stays short.
"""

import copy
import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conflict_ie.conll import read_conll
from conflict_ie.documents import find_overlaps, is_blank
from conflict_ie.errors import ConflictIEError, InputError
from conflict_ie.labelstudio import read_labelstudio
from conflict_ie.schema import LabelSchema

SCHEMA = LabelSchema.load("conflict")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                             HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------ building blocks
LEAF = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=6))
ANY = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                     max_size=3), max_leaves=6)
# Values that readers have been seen to mistake: booleans and floats as offsets, mis-cased types, typos.
SPECIAL = st.sampled_from([float("inf"), float("nan"), True, False, 5.5, 2.0, "3", "", " ", "\ufeff", [], {}, None,
                           "Labels", "label", "rigth", "Right", "bi", "left", "ARMED_GROUP", ["ARMED_GROUP", "WEAPON"],
                           "2024-01-01T10:00:00+05:00", "yesterday", -1, 10**6])
# Texts with the white space that trips readers: NBSP, U+2028, U+0085, form feed, zero-width and BOM, emoji.
ODD = ["\u00a0", "\u2028", "\x85", "\x0c", "\ufeff", "\u200b", "\N{FIRE}", "\t", "\n", " ", " "]
TEXT = st.lists(st.sampled_from(["Wagner", "Group", "fighters", "killed", "12", "villagers", "in", "Bakhmut", ".",
                                 "drones", "Kyiv"] + ODD), max_size=14).map("".join)
TIMES = st.sampled_from(["2024-01-01T10:00:00Z", "2024-01-01T10:00:00+02:00", "2024-01-01", "2024-01-01T09:00:00",
                         None])


@st.composite
def good_result(draw, text):
    """A result list that a strict read accepts (when the words allow): disjoint word spans, choices, relations."""
    words = [m.span() for m in re.finditer(r"\w+", text)]
    chosen = sorted(draw(st.sets(st.integers(0, max(len(words) - 1, 0)), max_size=4))) if words else []
    items, labels = [], {}
    for n, w in enumerate(chosen):
        rid, label = f"r{n}", draw(st.sampled_from(SCHEMA.entity_labels))
        start, end = words[w]
        value = {"start": start, "end": end, "text": text[start:end]}
        items.append({"id": rid, "from_name": "label", "to_name": "text", "type": "labels",
                      "value": {**value, "labels": [label]}})
        for attr in SCHEMA.attributes_for(label):
            items.append({"id": rid, "from_name": attr.name, "to_name": "text", "type": "choices",
                          "value": {**value, "choices": [draw(st.sampled_from(attr.choices))]}})
        labels[rid] = label
    for head in labels:
        for tail in labels:
            pairs = [r for r in SCHEMA.relation_labels if head != tail and SCHEMA.allows(r, labels[head], labels[tail])]
            if pairs and draw(st.booleans()):
                flip = draw(st.booleans())
                items.append({"from_id": tail if flip else head, "to_id": head if flip else tail, "type": "relation",
                              "direction": "left" if flip else "right", "labels": [draw(st.sampled_from(pairs))]})
    return items


@st.composite
def good_task(draw, task_id):
    text = draw(TEXT)
    annotations = [{"id": 10 * task_id + k, "completed_by": draw(st.sampled_from([1, 2])),
                    "was_cancelled": draw(st.sampled_from([False, False, False, True])),
                    "ground_truth": draw(st.booleans()), "updated_at": draw(TIMES), "created_at": draw(TIMES),
                    "result": draw(good_result(text))} for k in range(draw(st.integers(0, 2)))]
    return {"id": task_id, "data": {"text": text, "url": "u"}, "meta": {"origin": "x"}, "annotations": annotations,
            "drafts": draw(st.sampled_from([[], [{"result": []}]]))}


@st.composite
def good_json_min_row(draw, task_id):
    """A JSON_MIN row: the text at the top level, one key per control tag, regions without ids."""
    text = draw(TEXT)
    row = {"id": task_id, "text": text, "annotator": 1, "annotation_id": draw(st.sampled_from([None, 7])),
           "updated_at": draw(TIMES)}
    for item in draw(good_result(text)):
        if item["type"] != "relation":
            row.setdefault(item["from_name"], []).append(dict(item["value"]))
    return row


def _slots(node, out):
    """Every (container, key) in a JSON tree, in document order."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        out.append((node, key))
        _slots(value, out)
    return out


@st.composite
def corrupted(draw, strategy, most=3):
    """A value of ``strategy`` with up to ``most`` places changed: replaced, removed, nudged by one, retyped."""
    value = draw(strategy)
    rng = draw(st.randoms(use_true_random=False))  # a uniform pick of the place: small indices are not favoured
    for _ in range(draw(st.integers(0, most))):
        slots = _slots(value, [])
        if not slots:
            return draw(ANY) if draw(st.booleans()) else value
        node, key = slots[rng.randrange(len(slots))]
        how = draw(st.integers(0, 5))
        if how == 0 and isinstance(node, dict):
            del node[key]
        elif how == 1 and isinstance(node[key], int) and not isinstance(node[key], bool):
            node[key] += draw(st.sampled_from([-1, 1]))
        elif how == 2:
            node[key] = draw(ANY)
        else:
            node[key] = copy.deepcopy(draw(SPECIAL))  # a fresh [] or {}: never one object in two places
    return value


def export_of(row):
    return corrupted(st.lists(st.integers(1, 4), max_size=4, unique=True).flatmap(
        lambda ids: st.tuples(*[row(i) for i in ids]).map(list)))


EXPORT = st.one_of(*[export_of(good_task)] * 7, export_of(good_json_min_row), export_of(good_json_min_row), ANY)


# ------------------------------------------------------------------ what a document promises
def assert_document_keeps_its_promises(doc, schema):
    ids = [s.id for s in doc.spans]
    assert len(ids) == len(set(ids))
    for span in doc.spans:
        assert isinstance(span.start, int) and isinstance(span.end, int)
        assert 0 <= span.start < span.end <= len(doc.text)
        piece = doc.text[span.start:span.end]
        assert piece and not piece[0].isspace() and not piece[-1].isspace()
        assert not is_blank(piece[0]) and not is_blank(piece[-1])
        assert span.label in schema.entity_labels
        allowed = {a.name: a for a in schema.attributes_for(span.label)}
        assert set(span.attributes) <= set(allowed)
        assert all(span.attributes[name] in allowed[name].choices for name in span.attributes)
        assert all(a.name in span.attributes for a in allowed.values() if a.required)
    assert list(find_overlaps(doc.spans)) == []
    by_id = doc.span_by_id()
    for rel in doc.relations:
        assert rel.head in by_id and rel.tail in by_id and rel.head != rel.tail
        assert schema.allows(rel.label, by_id[rel.head].label, by_id[rel.tail].label)


# ------------------------------------------------------------------ Label Studio
@SETTINGS
@given(export=EXPORT, lenient=st.booleans(), policy=st.sampled_from(["ground_truth", "latest", "first", "annotator:1"]))
def test_random_labelstudio_exports_read_or_refuse_naming_the_task(tmp_path, export, lenient, policy):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    try:
        res = read_labelstudio(path, SCHEMA, lenient=lenient, policy=policy)
    except ConflictIEError as exc:
        assert isinstance(exc, InputError) and str(path) in str(exc)
        single_task = isinstance(export, dict) and "id" in export and "data" in export
        if isinstance(export, list) or single_task:
            assert exc.task is not None, f"a failure inside a task should name it: {exc}"
        return
    items = export if isinstance(export, list) else [export]
    texts = [item["data"].get("text") for item in items if isinstance(item.get("data"), dict)]
    texts += [item.get("text") for item in items]  # JSON_MIN rows
    assert len({d.id for d in res.documents}) == len(res.documents)
    for doc in res.documents:
        assert doc.text in texts
        assert_document_keeps_its_promises(doc, SCHEMA)
    assert res.report.n_documents == len(res.documents)


@SETTINGS
@given(raw=st.one_of(st.binary(max_size=60), st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
                     EXPORT.map(lambda e: json.dumps(e).encode("utf-16"))))
def test_random_bytes_are_read_or_refused(tmp_path, raw):
    path = tmp_path / "bytes.json"
    path.write_bytes(raw)
    try:
        res = read_labelstudio(path, SCHEMA)
    except ConflictIEError:
        return
    for doc in res.documents:
        assert_document_keeps_its_promises(doc, SCHEMA)


# ------------------------------------------------------------------ CoNLL
TOKEN = st.text(alphabet=st.sampled_from(list("KyivNew York10,-.\t") + ["\u00a0", "\u2028", "\x85", "\x0c", "\ufeff",
                                                                         "\u2009", "\r"]), min_size=0, max_size=6)
TAG = st.one_of(st.sampled_from(["O", "O", "B-LOCATION", "I-LOCATION", "B-WEAPON", "I-WEAPON", "E-WEAPON", "S-OFFICIAL",
                                 "B-PLACE", "B-", "LOC", "b-LOCATION"]), st.text(max_size=4))
LINE = st.one_of(
    st.tuples(TOKEN, st.sampled_from(["\t", " ", "  ", "\t\t"]), st.sampled_from(["", "NNP\t", "NNP "]), TAG).map(
        lambda t: t[0] + t[1] + t[2] + t[3]),
    st.sampled_from(["", " ", "\t", "\r", "\u00a0", "\x0c", "-DOCSTART- -X- O O", "-DOCSTART-\tO", "\ufeff-DOCSTART-"]),
    TOKEN,
)


@SETTINGS
@given(lines=st.lists(LINE, max_size=12), newline=st.sampled_from(["\n", "\r\n", "\r"]), bom=st.booleans(),
       lenient=st.booleans())
def test_random_conll_files_read_or_refuse(tmp_path, lines, newline, bom, lenient):
    path = tmp_path / "random.conll"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + newline.join(lines).encode("utf-8"))
    try:
        docs, report = read_conll(path, SCHEMA, lenient=lenient)
    except ConflictIEError as exc:
        assert str(path) in str(exc)
        return
    assert report.n_documents == len(docs)
    for doc in docs:
        assert_document_keeps_its_promises(doc, SCHEMA)


# Well-formed files: tokens (spaces, NBSP, U+2028 inside, never at an edge) come back whole, entities exactly.
INNER = st.text(alphabet=st.sampled_from(list("KyivNewYork10-.") + [" ", "\u00a0", "\u2028", "\x85", "\u2009"]),
                min_size=1, max_size=8).filter(lambda t: not t[0].isspace() and not t[-1].isspace()
                                               and not t.startswith("-DOCSTART-"))


@st.composite
def sentence(draw):
    tokens = draw(st.lists(INNER, min_size=1, max_size=6))
    tags, entities, open_label = [], [], None
    for i in range(len(tokens)):
        label = draw(st.sampled_from([None, None, "LOCATION", "WEAPON"]))
        if label is None:
            tags.append("O")
            open_label = None
        elif label == open_label and draw(st.booleans()):
            tags.append(f"I-{label}")
            entities[-1][2] = i
        else:
            tags.append(f"B-{label}")
            entities.append([label, i, i])
            open_label = label
    return tokens, tags, entities


@SETTINGS
@given(sentences=st.lists(sentence(), min_size=1, max_size=4), newline=st.sampled_from(["\n", "\r\n"]))
def test_well_formed_tab_files_keep_tokens_whole(tmp_path, sentences, newline):
    body = (newline * 2).join(newline.join(f"{tok}\tX\t{tag}" for tok, tag in zip(tokens, tags))
                              for tokens, tags, _ in sentences)
    path = tmp_path / "good.tsv"
    path.write_bytes(body.encode("utf-8"))
    (doc,), _ = read_conll(path, SCHEMA)
    assert doc.text == "\n".join(" ".join(tokens) for tokens, _, _ in sentences)
    expected = [(label, " ".join(tokens[first:last + 1])) for tokens, _, ents in sentences for label, first, last in ents]
    assert [(s.label, doc.text[s.start:s.end]) for s in doc.spans] == expected
