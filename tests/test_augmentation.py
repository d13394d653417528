import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conflict_ie.augmentation import mention_pool, mention_replacement, replace_mentions
from conflict_ie.config import TrainConfig
from conflict_ie.documents import Document, Relation, Span
from conflict_ie.errors import ConfigError

LABELS = ("Location", "Person", "Organisation")
words = st.text(alphabet="abc XYZ\n,.", min_size=1, max_size=8)


@st.composite
def documents(draw):
    """A text of gaps and mentions; returns (document, the gaps in order)."""
    n = draw(st.integers(0, 6))
    gaps = [draw(st.text(alphabet="ab .\n", max_size=5)) for _ in range(n + 1)]
    text, spans = gaps[0], []
    for i in range(n):
        mention = draw(words)
        spans.append(Span(f"s{i}", len(text), len(text) + len(mention), draw(st.sampled_from(LABELS))))
        text += mention + gaps[i + 1]
    return Document("d", text, tuple(spans)), gaps


@settings(max_examples=200, deadline=None)
@given(documents(), st.dictionaries(st.sampled_from(LABELS), st.lists(words, min_size=1, max_size=3)),
       st.floats(0, 1), st.integers(0, 10**6))
def test_replacement_keeps_text_between_mentions_and_labels(doc_gaps, pool, rate, seed):
    doc, gaps = doc_gaps
    new = replace_mentions(doc, pool, rate, random.Random(seed))
    assert [s.id for s in new.spans] == [s.id for s in doc.spans]
    assert [s.label for s in new.spans] == [s.label for s in doc.spans]
    # The text between mentions is untouched, in order; each mention is the original or from its label's pool.
    edges = [0, *[x for s in new.spans for x in (s.start, s.end)], len(new.text)]
    assert [new.text[a:b] for a, b in zip(edges[::2], edges[1::2])] == gaps
    for old, span in zip(doc.spans, new.spans):
        assert new.span_text(span) in {doc.span_text(old), *pool.get(span.label, ())}


def test_rate_zero_is_a_copy_and_rate_one_replaces_every_mention():
    doc = Document("7", "ISIL left Mosul.", (Span("a", 0, 4, "Organisation"), Span("b", 10, 15, "Location")),
                   (Relation("a", "b", "CoLocated"),))
    pool = {"Organisation": ["the Kurdish Peshmerga"], "Location": ["Raqqa"]}
    same = replace_mentions(doc, pool, 0.0, random.Random(0))
    assert (same.text, same.spans, same.relations) == (doc.text, doc.spans, doc.relations)
    new = replace_mentions(doc, pool, 1.0, random.Random(0))
    assert new.text == "the Kurdish Peshmerga left Raqqa."
    assert [new.span_text(s) for s in new.spans] == ["the Kurdish Peshmerga", "Raqqa"]
    assert new.relations == doc.relations


def test_copies_are_deterministic_for_a_seed_and_drawn_from_the_given_documents_only():
    docs = [Document(str(i), f"{name} met {place}.", (Span("p", 0, len(name), "Person"),
                                                       Span("l", len(name) + 5, len(name) + 5 + len(place), "Location")))
            for i, (name, place) in enumerate([("Ali", "Mosul"), ("Mariam", "Aleppo"), ("Sam", "Homs")])]
    a = mention_replacement(docs, copies=3, rate=0.5, seed=1)
    assert a == mention_replacement(docs, copies=3, rate=0.5, seed=1)
    assert len(a) == 9 and {d.id for d in a} >= {"0#aug1", "2#aug3"}
    pool = mention_pool(docs)
    assert all(d.span_text(s) in pool[s.label] for d in a for s in d.spans)
    assert a != mention_replacement(docs, copies=3, rate=0.5, seed=2)


def test_config_rejects_bad_augmentation_values():
    with pytest.raises(ConfigError, match=r"ner.augment_copies must be >= 0 and ner.augment_rate in \[0, 1\]"):
        TrainConfig.from_dict({"ner": {"augment_copies": 1, "augment_rate": 1.5}})


def test_training_sees_the_copies(tmp_path, schema):
    """With one copy per document the entity model is trained on twice the entities (alignment report)."""
    from conflict_ie.corpus import build_corpus
    from conflict_ie.markup import parse_markup
    from conflict_ie.training import train_ner
    from conftest import BODIES
    from tiny import tiny_base_model

    docs = [parse_markup(BODIES[i % 3], schema, doc_id=f"d{i}") for i in range(6)]
    corpus = build_corpus({"train": docs[:4], "validation": docs[4:], "test": []}, schema)
    base = tiny_base_model(tmp_path / "base", [d.text for d in docs])
    counts = []
    for copies in (0, 1):
        config = TrainConfig.from_dict({"base_model": str(base), "ner": {
            "max_length": 16, "stride": 4, "max_steps": 1, "batch_size": 4, "augment_copies": copies}})
        _, report = train_ner(config, corpus, schema, tmp_path / f"run{copies}")
        counts.append(report.n_entities)
    assert counts[1] == 2 * counts[0] > 0
