"""Relation inference with a stub model: thresholds, several labels per pair, symmetric labels once."""

import numpy as np
import pytest
from transformers import BertConfig

from conflict_ie.documents import Span
from conflict_ie.relation_data import DESIGN, marker_tokens
from conflict_ie.relation_inference import INFERENCE_MAX_PAIRS, RelationExtractor
from conflict_ie.relation_model import RelationModel, RelationModelConfig
from conflict_ie.schema import LabelSchema
from tiny import word_tokenizer

SCHEMA = LabelSchema.from_dict({
    "name": "t", "entities": [{"label": "G"}, {"label": "P"}],
    # The symmetric label comes first, so that a direction swapped for it would leak into the next.
    "relations": [{"label": "ALLY", "symmetric": True, "pairs": [["G", "G"]]},
                  {"label": "ATTACKS", "pairs": [["G", "G"]]},
                  {"label": "IN", "pairs": [["G", "P"]]}]})
TEXT = "Alpha attacked Beta in Gamma."
A, B, C = Span("a", 0, 5, "G"), Span("b", 15, 19, "G"), Span("c", 23, 28, "P")


def extractor(probs, threshold=0.5):
    tok = word_tokenizer([TEXT])
    tok.add_special_tokens({"additional_special_tokens": marker_tokens(SCHEMA)})
    enc = BertConfig(vocab_size=len(tok), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=8).to_dict()
    model = RelationModel(RelationModelConfig(encoder=enc, relation_labels=list(SCHEMA.relation_labels),
                                              threshold=threshold, max_input_tokens=64))
    model.config.design = DESIGN
    rx = RelationExtractor(model, tok, SCHEMA)
    # The model's probabilities per candidate (head id, tail id), in the schema's label order.
    rx._run = lambda rows, batch_size: [
        (np.array([probs[(j[1].id, j[2].id)] for j in r["jobs"] if j[0] == "pair"]).reshape(-1, 3), [])
        for r in rows]
    return rx


def test_labels_threshold_direction_and_symmetry():
    probs = {("a", "b"): [0.9, 0.8, 0.0], ("b", "a"): [0.7, 0.6, 0.0],
             ("a", "c"): [0.0, 0.0, 0.55], ("b", "c"): [0.0, 0.0, 0.45]}
    rels, attrs = extractor(probs).classify(TEXT, [A, B, C])
    got = {(h.id, t.id, label, round(score, 2)) for h, t, label, score in rels}
    # ALLY once, with the higher of its two directions; ATTACKS both ways, each its own direction;
    # a pair keeps both of its labels; IN only where it reaches the threshold.
    assert got == {("a", "b", "ALLY", 0.9), ("a", "b", "ATTACKS", 0.8), ("b", "a", "ATTACKS", 0.6),
                   ("a", "c", "IN", 0.55)}
    assert attrs == {}


def test_threshold_override():
    probs = {("a", "b"): [0.9, 0.8, 0.0], ("b", "a"): [0.7, 0.6, 0.0],
             ("a", "c"): [0.0, 0.0, 0.55], ("b", "c"): [0.0, 0.0, 0.45]}
    rx = extractor(probs)
    rx.threshold = 0.85
    assert [(h.id, t.id, label) for h, t, label, _ in rx.classify(TEXT, [A, B, C])[0]] == [("a", "b", "ALLY")]
    with pytest.raises(Exception, match="threshold"):
        RelationExtractor(rx.model, rx.encoder.tokenizer, SCHEMA, threshold=2.0)


def test_loss_learns_only_the_labels_the_schema_allows():
    import torch

    tok = word_tokenizer([TEXT])
    enc = BertConfig(vocab_size=len(tok), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=8).to_dict()
    model = RelationModel(RelationModelConfig(encoder=enc, relation_labels=["X", "Y"])).eval()  # no dropout
    ids = torch.tensor([[2, 5, 6, 3]])
    kw = dict(input_ids=ids, attention_mask=torch.zeros((1, 1, 4, 4)), position_ids=torch.arange(4)[None],
              pair_index=torch.tensor([[0, 1, 2]]),
              attr_index=torch.zeros((0, 3), dtype=torch.long), rel_labels=torch.tensor([[1.0, 0.0]]))
    logits = model(**{k: v for k, v in kw.items() if k != "rel_labels"})["relation_logits"][0]
    only_x = model(**kw, rel_mask=torch.tensor([[1.0, 0.0]]))["loss"]
    # With Y masked out the loss is X's binary cross-entropy alone: -log(sigmoid(logit_X)).
    assert torch.allclose(only_x, -torch.nn.functional.logsigmoid(logits[0]), atol=1e-6)
    both = model(**kw, rel_mask=torch.tensor([[1.0, 1.0]]))["loss"]
    expected = (-torch.nn.functional.logsigmoid(logits[0]) - torch.nn.functional.logsigmoid(-logits[1])) / 2
    assert torch.allclose(both, expected, atol=1e-6)


@pytest.mark.parametrize("markers", ["start_end", "start"])
@pytest.mark.parametrize("pair_context", ["none", "mean"])
def test_packed_and_batched_pairs_score_as_one_pair_at_a_time(pair_context, markers):
    # A real (tiny, random) model: all pairs of three texts packed as levitated markers in one padded
    # batch give each pair the same probabilities as each pair alone in its own pass (max_pairs=1,
    # batch 1): a mask, position or bookkeeping slip would shift them (with "mean", also a slip in
    # the in-between ranges of the pairs of other rows).
    import torch

    texts = [TEXT, "Beta attacked Alpha near Gamma and Alpha fled.", "Gamma."]
    tok = word_tokenizer(texts)
    tok.add_special_tokens({"additional_special_tokens": marker_tokens(SCHEMA)})
    enc = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16).to_dict()
    torch.manual_seed(0)
    model = RelationModel(RelationModelConfig(encoder=enc, relation_labels=list(SCHEMA.relation_labels),
                                              threshold=0.0, max_input_tokens=64, design=DESIGN,
                                              pair_context=pair_context, markers=markers))
    rx = RelationExtractor(model, tok, SCHEMA, device="cpu")
    one = RelationExtractor(model, tok, SCHEMA, device="cpu", max_pairs=1)

    def spans_of(text):
        return [Span(f"{w}{i}", i, i + len(w), "P" if w == "Gamma" else "G")
                for w in ("Alpha", "Beta", "Gamma") for i in range(len(text)) if text.startswith(w, i)]

    items = [(t, spans_of(t)) for t in texts]
    together = rx.classify_many(items, batch_size=8)
    alone = [one.classify(t, sp, batch_size=1) for t, sp in items]
    assert one.encoder.max_pairs == 1 and rx.encoder.max_pairs == INFERENCE_MAX_PAIRS
    assert rx.encoder.markers == one.encoder.markers == markers
    for (rels_a, _), (rels_b, _) in zip(together, alone):
        assert [(h.id, t.id, lab) for h, t, lab, _ in rels_a] == [(h.id, t.id, lab) for h, t, lab, _ in rels_b]
        assert np.allclose([s for *_, s in rels_a], [s for *_, s in rels_b], atol=1e-5)
    assert len(together[1][0]) > 0 and together[2][0] == []


def test_a_folder_of_the_older_design_is_refused(tmp_path):
    tok = word_tokenizer([TEXT])
    enc = BertConfig(vocab_size=len(tok), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=8).to_dict()
    model = RelationModel(RelationModelConfig(encoder=enc, relation_labels=list(SCHEMA.relation_labels)))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(Exception, match="older design.*retrain"):
        RelationExtractor.from_pretrained(tmp_path, schema=SCHEMA)
