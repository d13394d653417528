"""``relations.markers: start``: one levitated marker per span, at its first token, instead of two."""

import pytest

from conflict_ie.config import TrainConfig
from conflict_ie.documents import Span
from conflict_ie.errors import ConfigError
from conflict_ie.markup import parse_markup
from conflict_ie.relation_data import RelationEncoder, marker_tokens, training_rows
from conflict_ie.relation_model import RelationModel, RelationModelConfig
from tiny import word_tokenizer

TEXT = "Gladkov of Belgorod said Wagner Group shelled Kyiv."


def encoder(schema, texts=(TEXT,), **kw):
    tok = word_tokenizer(list(texts))
    tok.add_special_tokens({"additional_special_tokens": marker_tokens(schema)})
    settings = {"max_length": 64, "max_sentence_distance": 1, "max_token_distance": 80, **kw}
    return RelationEncoder(tok, schema, attributes=schema.attributes, **settings)


def spans():
    w = TEXT.index("Wagner")
    return [Span("o", 0, 7, "OFFICIAL"), Span("l", 11, 19, "LOCATION"), Span("g", w, w + 12, "ARMED_GROUP"),
            Span("k", TEXT.index("Kyiv"), TEXT.index("Kyiv") + 4, "LOCATION")]


def test_a_pair_gets_two_start_markers_at_its_spans_first_tokens(schema):
    both, start = encoder(schema), encoder(schema, markers="start")
    prep = start.prepare(TEXT)
    (window, jobs), = start.jobs(prep, spans())
    (packed,) = start.pack(window, jobs)
    (packed_both,) = both.pack(window, jobs)
    n, tok = len(window.input_ids), start.tokenizer
    pairs = [j for j in jobs if j[0] == "pair"]
    assert len(pairs) == 5
    assert len(packed["input_ids"]) == n + 2 * len(pairs) and len(packed_both["input_ids"]) == n + 4 * len(pairs)
    assert packed["input_ids"][:n] == window.input_ids
    for k, ((_, h, t), (s_at, o_at)) in enumerate(zip(pairs, packed["pairs"])):
        assert o_at == s_at + 1 == n + 2 * k + 1
        assert tok.convert_ids_to_tokens(packed["input_ids"][s_at:o_at + 1]) == [f"<S:{h.label}>", f"<O:{t.label}>"]
        # "Wagner Group" is two tokens: its marker sits at the first, and there is no end marker.
        assert [packed["position_ids"][s_at], packed["position_ids"][o_at]] == \
            [window.positions[h.id][0], window.positions[t.id][0]]
        assert packed["groups"][s_at] == packed["groups"][o_at] == k
    # The in-between ranges are the text's, whatever the markers.
    assert packed["between"] == packed_both["between"]


def test_an_attribute_span_gets_one_marker(schema):
    doc = parse_markup("{two men|CASUALTY_FIGURE#c=killed} were killed", schema)
    enc = encoder(schema, texts=["two men were killed"], max_length=32, markers="start")
    rows, stats = training_rows([doc], enc, negative_ratio=1.0, seed=0)
    (row,) = rows
    ((at, _, _),) = row["attrs"]
    assert stats["attribute"] == 1 and at == len(row["input_ids"]) - 1
    assert enc.tokenizer.convert_ids_to_tokens(row["input_ids"])[at:] == ["<S:CASUALTY_FIGURE>"]
    assert row["position_ids"][at] == 1  # "two", after [CLS]


def test_unknown_marker_layouts_are_refused(schema, tmp_path):
    with pytest.raises(ValueError, match="markers is 'start_end' or 'start'"):
        encoder(schema, markers="end")
    with pytest.raises(ValueError, match="markers is one of"):
        RelationModelConfig(markers="end")
    p = tmp_path / "c.yaml"
    p.write_text("relations:\n  markers: start\n")
    assert TrainConfig.load(p).relations.markers == "start"
    assert TrainConfig.load(p, ["relations.markers=start_end"]).relations.markers == "start_end"
    with pytest.raises(ConfigError, match="markers"):
        TrainConfig.load(p, ["relations.markers=end"])


def test_a_folder_without_the_setting_reads_as_start_and_end(tmp_path):
    assert RelationModelConfig().markers == "start_end"
    cfg = RelationModelConfig(markers="start")
    cfg.save_pretrained(tmp_path)
    assert RelationModelConfig.from_pretrained(tmp_path).markers == "start"


def test_training_and_inference_use_the_configured_markers(world):
    from dataclasses import replace

    from conflict_ie.corpus import load_corpus
    from conflict_ie.relation_inference import RelationExtractor
    from conflict_ie.training import train_relations

    tmp, _ = world
    run = tmp / "run"
    config = TrainConfig.load(run / "train_config.yaml")
    config = replace(config, relations=replace(config.relations, markers="start", epochs=1.0))
    corpus, schema = load_corpus(run / "corpus")
    train_relations(config, corpus, schema, tmp / "rel-start")
    assert RelationModel.from_pretrained(tmp / "rel-start").config.markers == "start"
    rx = RelationExtractor.from_pretrained(tmp / "rel-start", schema=schema)
    assert rx.encoder.markers == "start"
    assert RelationExtractor.from_pretrained(run / "relations", schema=schema).encoder.markers == "start_end"
