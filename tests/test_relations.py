"""Pure functions of the relation model: candidates, markers, direction, training rows."""

from conflict_ie.documents import Document, Relation, Span
from conflict_ie.markup import parse_markup
from conflict_ie.relations import (NONE, Encoder, candidate_pairs, insert_markers, marker_tokens, sentence_bounds,
                                   training_rows)
from tiny import word_tokenizer

TEXT = "Gladkov of Belgorod said Wagner Group shelled Kyiv. Later that day calm returned. Drones hit Lviv."
#       0       8  11      19   24     31    37      45   50


def spans():
    t = TEXT
    return [Span("o", 0, 7, "OFFICIAL"), Span("l", 11, 19, "LOCATION"),
            Span("g", t.index("Wagner"), t.index("Wagner") + 12, "ARMED_GROUP"),
            Span("k", t.index("Kyiv"), t.index("Kyiv") + 4, "LOCATION"),
            Span("v", t.index("Lviv"), t.index("Lviv") + 4, "LOCATION")]


def test_candidates_follow_schema_direction_and_distance(schema):
    doc = Document("d", TEXT)
    pairs = {(h.id, t.id) for h, t in candidate_pairs(doc, spans(), schema, max_sentence_distance=0,
                                                        max_token_distance=50)}
    # OFFICIAL -> LOCATION / ARMED_GROUP and ARMED_GROUP -> LOCATION are allowed; never the reverse.
    assert pairs == {("o", "l"), ("o", "g"), ("o", "k"), ("g", "l"), ("g", "k")}
    near = {(h.id, t.id) for h, t in candidate_pairs(doc, spans(), schema, max_sentence_distance=2,
                                                       max_token_distance=50)}
    assert ("g", "v") in near and ("v", "g") not in near  # LOCATION -> ARMED_GROUP is not a schema pair
    capped = {(h.id, t.id) for h, t in candidate_pairs(doc, spans(), schema, max_sentence_distance=2,
                                                         max_token_distance=3)}
    assert ("o", "l") in capped and ("o", "k") not in capped


def test_sentence_bounds():
    b = sentence_bounds(TEXT)
    assert [TEXT[s:e] for s, e in b] == ["Gladkov of Belgorod said Wagner Group shelled Kyiv.",
                                        "Later that day calm returned.", "Drones hit Lviv."]


def test_markers_map_back_whatever_the_order():
    head, tail = Span("k", 46, 50, "LOCATION"), Span("o", 0, 7, "OFFICIAL")  # tail before head
    m = insert_markers(TEXT, (0, 51), head, tail)
    assert m.text.startswith("<O:OFFICIAL> Gladkov </O:OFFICIAL>")
    assert m.text[m.head_marker:].startswith("<S:LOCATION> Kyiv </S:LOCATION>")
    assert m.text[m.tail_marker:].startswith("<O:OFFICIAL>")
    kept = [(i, o) for i, o in enumerate(m.char_map) if o >= 0]
    assert all(m.text[i] == TEXT[o] for i, o in kept) and [o for _, o in kept] == list(range(51))


def test_adjacent_spans_close_before_open():
    text = "AB"
    m = insert_markers(text, (0, 2), Span("a", 0, 1, "OFFICIAL"), Span("b", 1, 2, "LOCATION"))
    assert m.text == "<S:OFFICIAL> A </S:OFFICIAL><O:LOCATION> B </O:LOCATION>"


def test_encoder_points_at_marker_tokens_and_rows(schema):
    tok = word_tokenizer([TEXT])
    tok.add_special_tokens({"additional_special_tokens": marker_tokens(schema)})
    enc = Encoder(tok, schema, max_length=64, max_sentence_distance=1, max_token_distance=80)
    doc = Document("d", TEXT, tuple(spans()), (Relation("o", "l", "AFFILIATED_WITH"),))
    row = enc.encode(doc, spans()[0], spans()[1])
    toks = tok.convert_ids_to_tokens(row["input_ids"])
    assert toks[row["head_pos"]] == "<S:OFFICIAL>" and toks[row["tail_pos"]] == "<O:LOCATION>"
    rows, stats = training_rows([doc], enc, negative_ratio=2.0, seed=0)
    assert stats["positive"] == 1 and stats["negative_kept"] == 2 and stats["gold_out_of_reach"] == 0
    labels = sorted(enc.relation_labels[r["labels"]] for r in rows if r["task"] == 0)
    assert labels == ["AFFILIATED_WITH", NONE, NONE]


def test_attribute_rows(schema):
    tok = word_tokenizer(["two men were killed"])
    tok.add_special_tokens({"additional_special_tokens": marker_tokens(schema)})
    enc = Encoder(tok, schema, max_length=32, max_sentence_distance=1, max_token_distance=80)
    doc = parse_markup("{two men|CASUALTY_FIGURE#c=killed} were killed", schema)
    rows, stats = training_rows([doc], enc, negative_ratio=1.0, seed=0)
    assert stats["attribute"] == 1 and rows[0]["task"] == 1
    assert enc.attribute_choices[rows[0]["labels"]] == "killed"
