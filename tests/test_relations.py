"""Pure functions of the relation model: candidates, markers, direction, label sets, training rows."""

import numpy as np

from conflict_ie.documents import Document, Relation, Span
from conflict_ie.markup import parse_markup
from conflict_ie.relation_data import (PreparedText, RelationEncoder, gold_label_sets, insert_markers, marker_tokens,
                                       training_rows)
from conflict_ie.sentences import Sentences, sentence_bounds
from tiny import word_tokenizer

TEXT = "Gladkov of Belgorod said Wagner Group shelled Kyiv. Later that day calm returned. Drones hit Lviv."
#       0       8  11      19   24     31    37      45   50


def spans():
    t = TEXT
    return [Span("o", 0, 7, "OFFICIAL"), Span("l", 11, 19, "LOCATION"),
            Span("g", t.index("Wagner"), t.index("Wagner") + 12, "ARMED_GROUP"),
            Span("k", t.index("Kyiv"), t.index("Kyiv") + 4, "LOCATION"),
            Span("v", t.index("Lviv"), t.index("Lviv") + 4, "LOCATION")]


def encoder(schema, texts=(TEXT,), **kw):
    tok = word_tokenizer(list(texts))
    tok.add_special_tokens({"additional_special_tokens": marker_tokens(schema)})
    settings = {"max_length": 64, "max_sentence_distance": 1, "max_token_distance": 80, **kw}
    return RelationEncoder(tok, schema, attributes=schema.attributes, **settings)


def test_candidates_follow_schema_direction_and_distance(schema):
    enc = encoder(schema, max_sentence_distance=0, max_token_distance=50)
    prep = enc.prepare(TEXT)
    pairs = {(h.id, t.id) for h, t in enc.candidates(prep, spans())}
    # OFFICIAL -> LOCATION / ARMED_GROUP and ARMED_GROUP -> LOCATION are allowed; never the reverse.
    assert pairs == {("o", "l"), ("o", "g"), ("o", "k"), ("g", "l"), ("g", "k")}
    near = {(h.id, t.id) for h, t in encoder(schema, max_sentence_distance=2).candidates(prep, spans())}
    assert ("g", "v") in near and ("v", "g") not in near  # LOCATION -> ARMED_GROUP is not a schema pair


def test_candidate_distance_counts_sub_tokens(schema):
    # One sub-token ("of") lies between "Gladkov" and "Belgorod": a cap of 0 drops the pair, 1 keeps it.
    text = "Gladkov of Belgorod"
    sp = [Span("o", 0, 7, "OFFICIAL"), Span("l", 11, 19, "LOCATION")]
    prep = PreparedText(text, Sentences(((0, 19),), (19,)), np.array([0, 8, 11]))
    assert encoder(schema, max_token_distance=0).candidates(prep, sp) == []
    assert len(encoder(schema, max_token_distance=1).candidates(prep, sp)) == 1
    hyphen = "Gladkov - - - Belgorod"
    real = encoder(schema, texts=[hyphen], max_token_distance=2).prepare(hyphen)
    assert len(real.token_starts) == 5  # gladkov - - - belgorod: three tokens in between, not one word
    assert real.token_starts.tolist() == [0, 8, 10, 12, 14]
    far = [Span("o", 0, 7, "OFFICIAL"), Span("l", 14, 22, "LOCATION")]
    assert encoder(schema, texts=[hyphen], max_token_distance=2).candidates(real, far) == []
    assert len(encoder(schema, texts=[hyphen], max_token_distance=3).candidates(real, far)) == 1


def test_sentence_bounds_keep_abbreviations():
    b = sentence_bounds(TEXT)
    assert [TEXT[s:e] for s, e in b] == ["Gladkov of Belgorod said Wagner Group shelled Kyiv.",
                                        "Later that day calm returned.", "Drones hit Lviv."]
    text = "Gen. Gerasimov met Mr. Smith and the U.S. envoy. Talks failed."
    assert [text[s:e] for s, e in sentence_bounds(text)] == ["Gen. Gerasimov met Mr. Smith and the U.S. envoy.",
                                                             "Talks failed."]
    assert sentence_bounds("One line\nand another") == [(0, 8), (9, 20)]


def test_markers_map_back_whatever_the_order():
    head, tail = Span("k", 46, 50, "LOCATION"), Span("o", 0, 7, "OFFICIAL")  # tail before head
    m = insert_markers(TEXT, (0, 51), head, tail)
    assert m.text.startswith("<O:OFFICIAL> Gladkov </O:OFFICIAL>")
    assert m.text[m.head_marker:].startswith("<S:LOCATION> Kyiv </S:LOCATION>")
    assert m.text[m.tail_marker:].startswith("<O:OFFICIAL>")
    kept = [(i, o) for i, o in enumerate(m.char_map) if o != -1]
    assert all(m.text[i] == TEXT[o] for i, o in kept) and [o for _, o in kept] == list(range(51))


def test_adjacent_spans_close_before_open():
    text = "AB"
    m = insert_markers(text, (0, 2), Span("a", 0, 1, "OFFICIAL"), Span("b", 1, 2, "LOCATION"))
    assert m.text == "<S:OFFICIAL> A </S:OFFICIAL><O:LOCATION> B </O:LOCATION>"


def test_encoder_points_at_marker_tokens_and_rows(schema):
    enc = encoder(schema)
    doc = Document("d", TEXT, tuple(spans()), (Relation("o", "l", "AFFILIATED_WITH"),))
    row = enc.encode(enc.prepare(TEXT), spans()[0], spans()[1])
    toks = enc.tokenizer.convert_ids_to_tokens(row["input_ids"])
    assert toks[row["head_pos"]] == "<S:OFFICIAL>" and toks[row["tail_pos"]] == "<O:LOCATION>"
    rows, stats = training_rows([doc], enc, negative_ratio=2.0, seed=0)
    assert stats["positive"] == 1 and stats["negative_kept"] == 2 and stats["gold_out_of_reach"] == 0
    assert stats["candidates"] == {"pairs": 5, "dropped_window": 0, "attributes": 0, "attributes_dropped_window": 0}
    vectors = sorted(tuple(r["rel_labels"]) for r in rows if r["task"] == 0)
    assert vectors == [(0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)]
    # Learned only where the schema allows the label: OFFICIAL->LOCATION and OFFICIAL->ARMED_GROUP
    # allow AFFILIATED_WITH alone, ARMED_GROUP->LOCATION LOCATED_IN alone.
    masks = {tuple(r["rel_mask"]) for r in rows if r["task"] == 0}
    assert masks <= {(1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0)}
    assert [r["rel_mask"] for r in rows if r["rel_labels"][0] == 1.0] == [[1.0, 0.0, 0.0, 0.0]]


def test_markers_that_do_not_fit_are_counted(schema):
    enc = encoder(schema, max_length=6)  # 5 pairs: o->l, o->g, o->k, g->l, g->k (Lviv is two sentences away)
    doc = Document("d", TEXT, tuple(spans()), (Relation("o", "l", "AFFILIATED_WITH"),))
    rows, stats = training_rows([doc], enc, negative_ratio=10.0, seed=0)
    assert rows == [] and stats["candidates"]["pairs"] == 5 and stats["candidates"]["dropped_window"] == 5


def test_a_pair_keeps_all_its_gold_labels(schema):
    # Two labels on one pair (re3d has such pairs): both survive, in the label set and in the row.
    two = schema.__class__.from_dict({**schema.to_dict(), "relations": schema.to_dict()["relations"] + [
        {"label": "SPEAKS_FOR", "pairs": [["OFFICIAL", "LOCATION"]]}]})
    doc = Document("d", TEXT, tuple(spans()), (Relation("o", "l", "AFFILIATED_WITH"), Relation("o", "l", "SPEAKS_FOR")))
    assert gold_label_sets(doc, two)[("o", "l")] == {"AFFILIATED_WITH", "SPEAKS_FOR"}
    rows, stats = training_rows([doc], encoder(two), negative_ratio=0.0, seed=0)
    (row,) = [r for r in rows if r["task"] == 0]
    assert dict(zip(two.relation_labels, row["rel_labels"])) == {
        "AFFILIATED_WITH": 1.0, "LOCATED_IN": 0.0, "PERPETRATOR": 0.0, "FIGHTS": 0.0, "SPEAKS_FOR": 1.0}
    assert stats["pair_labels_max"] == 2


def test_reverse_of_a_symmetric_pair_is_never_a_negative(schema):
    text = "Hamas fought Israeli forces."
    doc = Document("d", text, (Span("a", 0, 5, "ARMED_GROUP"), Span("b", 13, 27, "ARMED_GROUP")),
                   (Relation("a", "b", "FIGHTS"),))
    rows, stats = training_rows([doc], encoder(schema, texts=[text]), negative_ratio=5.0, seed=0)
    fights = schema.relation_labels.index("FIGHTS")
    rel_rows = [r for r in rows if r["task"] == 0]
    assert len(rel_rows) == 2 and all(r["rel_labels"][fights] == 1.0 for r in rel_rows)
    assert stats["positive"] == 2 and stats["negative_total"] == 0


def test_attribute_rows(schema):
    doc = parse_markup("{two men|CASUALTY_FIGURE#c=killed} were killed", schema)
    enc = encoder(schema, texts=["two men were killed"], max_length=32)
    rows, stats = training_rows([doc], enc, negative_ratio=1.0, seed=0)
    assert stats["attribute"] == 1 and rows[0]["task"] == 1
    assert enc.attributes[0].choices[rows[0]["attr_label"]] == "killed"
