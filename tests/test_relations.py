"""Pure functions of the relation model: candidates, markers, direction, label sets, training rows."""

import numpy as np

from conflict_ie.documents import Document, Relation, Span
from conflict_ie.markup import parse_markup
from conflict_ie.relation_data import PreparedText, RelationCollator, RelationEncoder, gold_label_sets, marker_tokens, training_rows
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


def test_sentence_splitting_undoes_numpy_f2py_shrinking_the_regex_cache(monkeypatch):
    # numpy.f2py sets re._MAXCACHE to 50 on import (scipy imports it under seqeval), and pysbd
    # then compiles its ~870 patterns again for every paragraph; sentence_bounds raises it back.
    import re

    monkeypatch.setattr(re, "_MAXCACHE", 50)
    assert sentence_bounds("Talks failed. Gen. Smith left.") == [(0, 13), (14, 30)]
    assert re._MAXCACHE >= 1024
    # A larger cache is left alone.
    monkeypatch.setattr(re, "_MAXCACHE", 5000)
    sentence_bounds("Talks failed.")
    assert re._MAXCACHE == 5000


def test_windows_find_each_span_s_tokens_and_pack_levitated_markers(schema):
    enc = encoder(schema)
    doc = Document("d", TEXT, tuple(spans()), (Relation("o", "l", "AFFILIATED_WITH"),))
    prep = enc.prepare(TEXT)
    (window,) = enc.windows(prep, spans())  # the whole text fits in 64 tokens: one window, one pass
    toks = enc.tokenizer.convert_ids_to_tokens(window.input_ids)
    assert {sid: " ".join(toks[a:b + 1]) for sid, (a, b) in window.positions.items()} == {
        "o": "gladkov", "l": "belgorod", "g": "wagner group", "k": "kyiv", "v": "lviv"}
    (_, jobs), = enc.jobs(prep, spans())
    (packed,) = enc.pack(window, jobs)
    n = len(window.input_ids)
    assert packed["input_ids"][:n] == window.input_ids and packed["position_ids"][:n] == list(range(n))
    # Each pair: four markers after the text, at the positions of its spans' first and last tokens.
    for (kind, h, t), (s_at, o_at) in zip(jobs, packed["pairs"]):
        names = enc.tokenizer.convert_ids_to_tokens(packed["input_ids"][s_at:s_at + 2] +
                                                    packed["input_ids"][o_at:o_at + 2])
        assert names == [f"<S:{h.label}>", f"</S:{h.label}>", f"<O:{t.label}>", f"</O:{t.label}>"]
        assert packed["position_ids"][s_at:s_at + 2] == list(window.positions[h.id])
        assert packed["position_ids"][o_at:o_at + 2] == list(window.positions[t.id])
        assert len({packed["groups"][i] for i in (s_at, s_at + 1, o_at, o_at + 1)}) == 1
    # Each pair's in-between range: the text tokens after the earlier span and before the later one.
    words = {(h.id, t.id): " ".join(toks[lo:hi]) for (_, h, t), (lo, hi) in zip(jobs, packed["between"])}
    assert words[("o", "l")] == "of" and words[("o", "g")] == "of belgorod said"
    assert words[("g", "l")] == "said"  # the head after the tail: the same range as the other way round
    rows, stats = training_rows([doc], enc, negative_ratio=2.0, seed=0)
    assert stats["positive"] == 1 and stats["negative_kept"] == 2 and stats["gold_out_of_reach"] == 0
    assert stats["candidates"]["pairs"] == 3 and stats["candidates"]["dropped_window"] == 0
    (row,) = rows
    assert sorted(map(tuple, row["rel_labels"])) == [(0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)]
    # Learned only where the schema allows the label: OFFICIAL->LOCATION and OFFICIAL->ARMED_GROUP
    # allow AFFILIATED_WITH alone, ARMED_GROUP->LOCATION LOCATED_IN alone.
    assert {tuple(m) for m in row["rel_mask"]} <= {(1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0)}


def test_the_mask_keeps_pairs_apart(schema):
    rows = [{"input_ids": [1, 2, 3, 4, 5, 6, 7], "position_ids": [0, 1, 2, 1, 1, 2, 2],
             "groups": [-1, -1, -1, 0, 0, 1, 1], "pairs": [], "attrs": []},
            {"input_ids": [1, 2], "position_ids": [0, 1], "groups": [-1, -1], "pairs": [], "attrs": []}]
    sees = RelationCollator(0)(rows)["attention_mask"][:, 0].eq(0)
    assert sees[0, 0].tolist() == [True, True, True, False, False, False, False]  # text: text only
    assert sees[0, 3].tolist() == [True, True, True, True, True, False, False]  # marker: text + own pair
    assert sees[0, 6].tolist() == [True, True, True, False, False, True, True]
    assert sees[1, 1].tolist() == [True, True] + [False] * 5 and sees[1, 4].tolist() == [False] * 4 + [True] + [False] * 2


def test_many_pairs_are_packed_into_several_passes(schema):
    enc = encoder(schema, max_pairs=2)
    prep = enc.prepare(TEXT)
    (window, jobs), = enc.jobs(prep, spans())
    packs = enc.pack(window, jobs)
    assert [len(p["pairs"]) for p in packs] == [2, 2, 1] and [j for p in packs for j in p["jobs"]] == jobs


def test_windows_cover_every_candidate_pair_of_a_long_text(schema):
    # Twelve sentences in windows of at most 24 tokens: several windows, overlapping by one sentence,
    # and each candidate pair (same or neighbouring sentence) placed whole in exactly one of them.
    sentences = [f"Wagner Group shelled Town{i} ." for i in range(12)]
    text = " ".join(sentences)
    sp, at = [], 0
    for i, sent in enumerate(sentences):
        sp.append(Span(f"g{i}", at, at + 12, "ARMED_GROUP"))
        sp.append(Span(f"t{i}", at + 21, at + 21 + len(f"Town{i}"), "LOCATION"))
        at += len(sent) + 1
    enc = encoder(schema, texts=[text], max_length=24)
    prep = enc.prepare(text)
    windows = enc.windows(prep, sp)
    assert len(windows) > 3 and all(len(w.input_ids) <= 24 for w in windows)
    jobs = enc.jobs(prep, sp)
    placed = [(j[1].id, j[2].id) for _, js in jobs for j in js if j[0] == "pair"]
    assert all(len(p["input_ids"]) <= 24 + 4 * enc.max_pairs for w, js in jobs for p in enc.pack(w, js))
    cands = [(h.id, t.id) for h, t in enc.candidates(prep, sp)]
    assert sorted(placed) == sorted(cands) and len(set(placed)) == len(placed)
    assert ("g0", "t1") in cands and ("g0", "t2") not in cands  # one sentence apart, not two
    for window, js in jobs:
        for kind, h, t in js:
            assert window.start <= min(h.start, t.start) and max(h.end, t.end) <= window.end


def test_windows_that_cannot_fit_are_counted(schema):
    enc = encoder(schema, max_length=3)  # one token a window; 5 pairs: o->l, o->g, o->k, g->l, g->k (Lviv is two sentences away)
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
    (row,) = rows
    (labels,) = row["rel_labels"]
    assert dict(zip(two.relation_labels, labels)) == {
        "AFFILIATED_WITH": 1.0, "LOCATED_IN": 0.0, "PERPETRATOR": 0.0, "FIGHTS": 0.0, "SPEAKS_FOR": 1.0}
    assert stats["pair_labels_max"] == 2


def test_reverse_of_a_symmetric_pair_is_never_a_negative(schema):
    text = "Hamas fought Israeli forces."
    doc = Document("d", text, (Span("a", 0, 5, "ARMED_GROUP"), Span("b", 13, 27, "ARMED_GROUP")),
                   (Relation("a", "b", "FIGHTS"),))
    rows, stats = training_rows([doc], encoder(schema, texts=[text]), negative_ratio=5.0, seed=0)
    fights = schema.relation_labels.index("FIGHTS")
    (row,) = rows
    assert len(row["pairs"]) == 2 and all(lab[fights] == 1.0 for lab in row["rel_labels"])
    assert stats["positive"] == 2 and stats["negative_total"] == 0


def test_negative_ratio_below_zero_keeps_every_pair(schema):
    doc = Document("d", TEXT, tuple(spans()), (Relation("o", "l", "AFFILIATED_WITH"),))
    rows, stats = training_rows([doc], encoder(schema), negative_ratio=-1, seed=0)
    assert stats["negative_kept"] == stats["negative_total"] == 4


def test_attribute_rows(schema):
    doc = parse_markup("{two men|CASUALTY_FIGURE#c=killed} were killed", schema)
    enc = encoder(schema, texts=["two men were killed"], max_length=32)
    rows, stats = training_rows([doc], enc, negative_ratio=1.0, seed=0)
    assert stats["attribute"] == 1 and rows[0]["pairs"] == []
    ((pos, k, choice),) = rows[0]["attrs"]
    assert enc.tokenizer.convert_ids_to_tokens(rows[0]["input_ids"])[pos] == "<S:CASUALTY_FIGURE>"
    assert rows[0]["position_ids"][pos:pos + 2] == [1, 2]  # "two" and "men" after [CLS]
    assert enc.attributes[k].choices[choice] == "killed"
