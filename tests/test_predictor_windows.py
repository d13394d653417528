"""Window merging proven with a deterministic per-token model: an entity across every window edge."""

from types import SimpleNamespace

import pytest
import torch

from conflict_ie.alignment import tokenize_document, window_bounds
from conflict_ie.errors import ConfigError, InputError
from conflict_ie.predictor import Predictor
from conflict_ie.schema import LabelSchema
from tiny import word_tokenizer


class LookupModel(torch.nn.Module):
    """Logits from the token alone: 'wagner' -> B-ARMED_GROUP, 'group' -> I-ARMED_GROUP, else O."""

    def __init__(self, tok, schema):
        super().__init__()
        self.config = SimpleNamespace(id2label=schema.id2label)
        table = torch.zeros(len(tok), len(schema.bio_tags))
        table[:, 0] = 1.0
        for word, tag in (("wagner", "B-ARMED_GROUP"), ("group", "I-ARMED_GROUP"), ("kyiv", "B-LOCATION")):
            tid = tok.convert_tokens_to_ids(word)
            table[tid] = 0.0
            table[tid, schema.label2id[tag]] = 5.0
        self.register_buffer("table", table)

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(logits=self.table[input_ids])


@pytest.fixture()
def setup(schema):
    tok = word_tokenizer(["the", "wagner", "group", "kyiv"])
    return tok, Predictor(LookupModel(tok, schema), tok, schema, max_length=12, stride=4)


def test_entity_across_every_window_edge(setup):
    tok, pred = setup
    n = 80
    filler = tokenize_document(" ".join(["the"] * n), tok)
    bounds = window_bounds(filler, pred.max_length - 2, pred.stride)
    assert len(bounds) > 5
    edges = {ws for ws, _ in bounds[1:]} | {we for _, we in bounds[:-1]}
    inside = set()
    for e in edges:  # tokens e-1 and e straddle the edge
        inside |= {e - 1, e}
    words = []
    for i in range(n):
        words.append(("group" if i - 1 in inside else "wagner") if i in inside else "the")
    text = " ".join(words)
    assert window_bounds(tokenize_document(text, tok), pred.max_length - 2, pred.stride) == bounds
    expected, i = [], 0
    starts = [len(" ".join(words[:k])) + (1 if k else 0) for k in range(n)]
    while i < n:
        if i in inside:
            j = i
            while j + 1 < n and j + 1 in inside:
                j += 1
            expected.append((starts[i], starts[j] + len(words[j])))
            i = j + 1
        else:
            i += 1
    got = pred.predict(text).entities
    assert [(e.start, e.end) for e in got] == expected  # none lost, none doubled
    assert all(e.label == "ARMED_GROUP" and e.text == text[e.start:e.end] for e in got)
    # Every window edge is crossed by one of them.
    tok_starts = [o[0] for o in tokenize_document(text, tok).offsets]
    for e in edges:
        assert any(a < tok_starts[e] < b for a, b in expected)


def test_batch_equals_single(setup):
    _, pred = setup
    texts = ["the wagner group the kyiv", "kyiv " * 50, "", "wagner"]
    batch = pred.predict_batch(texts, batch_size=3)
    assert [p.entities for p in batch] == [pred.predict(t).entities for t in texts]


def test_edge_inputs(setup):
    _, pred = setup
    assert pred.predict("").entities == () and pred.predict(" \n\t ").entities == ()
    assert [e.text for e in pred.predict("wagner group".encode()).entities] == ["wagner group"]
    with pytest.raises(InputError, match="not UTF-8"):
        pred.predict(b"\xff\xfe wagner")
    with pytest.raises(InputError, match="takes a list"):
        pred.predict_batch("wagner")
    with pytest.raises(InputError, match="expected a str"):
        pred.predict(42)


def test_megabyte_article(setup):
    _, pred = setup
    text = ("the wagner group hit kyiv . " * 40000)[: 1_000_000]
    pred.max_length, pred.stride = 128, 16
    doc = pred.predict(text)
    assert len(doc.entities) == text.count("wagner group") + text.count("kyiv")
    assert all(text[e.start:e.end] == e.text for e in doc.entities[:100])


def test_schema_mismatch_is_named(schema, setup):
    tok, _ = setup
    other = LabelSchema.from_dict({"name": "x", "entities": [{"label": "PERSON"}]})
    with pytest.raises(ConfigError, match="does not match the schema"):
        Predictor(LookupModel(tok, schema), tok, other)
