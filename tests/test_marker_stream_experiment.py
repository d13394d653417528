"""``scripts/experiment_marker_stream.py`` on the tiny trained run: the marker stream computes what
the shipped relation model's packed pass computes for its markers, when both read the same text."""

import functools
from types import SimpleNamespace

import pytest
import torch
from conftest import load_script

from conflict_ie.corpus import documents_of, load_corpus
from conflict_ie.documents import Span
from conflict_ie.predictor import Predictor
from conflict_ie.relation_data import RelationCollator, RelationEncoder
from conflict_ie.relation_inference import RelationExtractor



@pytest.fixture(scope="module")
def script():
    return load_script("experiment_marker_stream")


def test_markers_read_given_text_states_as_the_packed_pass_does(script, world):
    tmp, _ = world
    rx = RelationExtractor.from_pretrained(tmp / "run" / "relations", schema=Predictor.from_pretrained(
        tmp / "run", relations=False).schema)
    model, tok = rx.model, rx.encoder.tokenizer
    corpus, schema = load_corpus(tmp / "run" / "corpus")
    doc = documents_of(corpus["train"], schema)[0]
    enc = RelationEncoder(tok, schema, 48, 1, 80, attributes=schema.attributes, max_pairs=3)
    rows = [r for w, jobs in enc.jobs(enc.prepare(doc.text), doc.spans) for r in enc.pack(w, jobs)]
    assert len(rows) >= 2 and any(r["attrs"] for r in rows)
    b = RelationCollator(tok.pad_token_id)(rows)
    stream = script.MarkerStream(model.encoder, schema.relation_labels, []).eval()
    with torch.inference_mode():
        full = model.encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                             position_ids=b["position_ids"], token_type_ids=torch.zeros_like(b["input_ids"]))
        for i, r in enumerate(rows):
            n = r["groups"].count(-1)
            ids = torch.tensor([r["input_ids"][:n]])
            text = torch.stack(model.encoder(input_ids=ids, token_type_ids=torch.zeros_like(ids),
                                             output_hidden_states=True).hidden_states)
            groups = torch.tensor(r["groups"][n:])
            mask = torch.cat([torch.ones(len(groups), n, dtype=torch.bool), groups[:, None] == groups[None, :]], 1)
            got = stream.markers(text, torch.tensor([r["input_ids"][n:]]), torch.tensor([r["position_ids"][n:]]),
                                 mask[None, None])
            want = full.last_hidden_state[i, n : len(r["input_ids"])]
            assert (got[0] - want).abs().max() < 1e-4


def test_extractor_over_an_entity_pass_scores_as_the_shipped_one(script, world):
    """The whole path (entity pass, windows, collator, stream, heads, decoding) on a text that fits
    one entity window and one relation window, with the relation model's own encoder as the
    entity encoder and its heads copied: the same relations and scores as the shipped extractor."""
    tmp, _ = world
    schema = Predictor.from_pretrained(tmp / "run", relations=False).schema
    rx = RelationExtractor.from_pretrained(tmp / "run" / "relations", schema=schema)
    model, tok = rx.model, rx.encoder.tokenizer
    text = "Wagner shelled Bakhmut."
    spans = [Span("a", 0, 6, "ARMED_GROUP"), Span("b", 15, 22, "LOCATION")]
    fake = SimpleNamespace(model=SimpleNamespace(base_model=model.encoder), tokenizer=tok, max_length=64, stride=8,
                           _prefix=[tok.cls_token_id], _suffix=[tok.sep_token_id], _pad_id=tok.pad_token_id)
    fake.window_batches = functools.partial(Predictor.window_batches, fake)  # the Predictor's own windows
    stream = script.MarkerStream(model.encoder, schema.relation_labels,
                                 [{"choices": a["choices"]} for a in model.config.attributes],
                                 model.config.pair_context)
    stream.relation_head.load_state_dict(model.relation_head.state_dict())
    for mine, theirs in zip(stream.attribute_heads, model.attribute_heads):
        mine.load_state_dict(theirs.state_dict())
    rc = SimpleNamespace(threshold=rx.threshold, max_length=model.config.max_input_tokens,
                         max_sentence_distance=model.config.max_sentence_distance,
                         max_token_distance=model.config.max_token_distance)
    sx = script.StreamExtractor(stream, tok, schema, fake, rc)
    want, want_attrs = rx.classify(text, spans)
    got, got_attrs = sx.classify(text, spans)
    assert want, "the tiny model finds no relation to compare"
    assert [(h.id, t.id, label) for h, t, label, _ in got] == [(h.id, t.id, label) for h, t, label, _ in want]
    assert max(abs(g[3] - w[3]) for g, w in zip(got, want)) < 1e-4
    assert got_attrs.keys() == want_attrs.keys()
