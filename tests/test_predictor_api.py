"""The notebook user's API: thresholds, chunks and streams, progress, threads, bad input, result types."""

import io
import threading

import pytest

from conflict_ie import CasualtyRecord, Entity, PredictedRelation, Prediction, Predictor
from conflict_ie.errors import ConfigError, InputError

TEXTS = ["Wagner Group fighters killed 12 villagers in Bakhmut with drones.",
         "Governor Ivan Petrov of Belgorod said Russian forces repelled an attack.",
         "Al-Shabaab militants wounded three soldiers near Mogadishu. Somali forces fought back.",
         "", "Calm returned to the city."] * 3


def rounded(preds, places=4):
    """Predictions with scores rounded: batches of other shapes pad differently, which moves
    float sums in their last digits, never a label or an offset."""
    def ent(e):
        return (e.id, e.label, e.start, e.end, e.text, round(e.score, places), e.attributes)

    return [(p.text, [ent(e) for e in p.entities],
             [(r.head.id, r.tail.id, r.label, round(r.score, places)) for r in p.relations],
             [(c.start, c.end, c.count_min, c.count_max, c.casualty_type, c.location, c.perpetrator)
              for c in p.casualties]) for p in preds]


@pytest.fixture(scope="module")
def predictor(world):
    return Predictor.from_pretrained(world[0] / "run", progress=False)


def test_results_are_immutable_and_hashable(predictor):
    preds = predictor.predict_batch(TEXTS[:3])
    assert len({*preds}) == 3 and all(isinstance(p, Prediction) for p in preds)
    found = [e for p in preds for e in p.entities]
    assert found, "the tiny model finds entities in its own training texts"
    assert all(isinstance(e, Entity) and isinstance(e.attributes, tuple) for e in found)
    assert all(isinstance(r, PredictedRelation) for p in preds for r in p.relations)
    assert all(isinstance(c, CasualtyRecord) for p in preds for c in p.casualties)
    with pytest.raises(AttributeError):
        found[0].label = "X"  # frozen


def test_chunks_and_stream_give_the_same_results_in_order(predictor):
    whole = predictor.predict_batch(TEXTS)
    assert [p.text for p in whole] == TEXTS
    assert rounded(predictor.predict_batch(TEXTS, chunk_size=1)) == rounded(whole)
    assert rounded(predictor.predict_batch(TEXTS, chunk_size=4, batch_size=3)) == rounded(whole)
    assert rounded(predictor.stream(iter(TEXTS), chunk_size=2)) == rounded(whole)
    assert rounded([predictor.predict(t) for t in TEXTS]) == rounded(whole)


def test_entity_threshold_drops_low_scores(predictor):
    every = [e for p in predictor.predict_batch(TEXTS[:3]) for e in p.entities]
    cut = sorted(e.score for e in every)[len(every) // 2]
    high = Predictor.from_pretrained(predictor_path(predictor), threshold=cut, progress=False)
    kept = [e for p in high.predict_batch(TEXTS[:3]) for e in p.entities]
    assert kept and len(kept) < len(every) and all(e.score >= cut for e in kept)
    with pytest.raises(ConfigError, match="threshold"):
        Predictor.from_pretrained(predictor_path(predictor), threshold=1.5)


def test_relation_threshold_overrides_the_run(predictor):
    # The tiny run's threshold is 0: every allowed label of every candidate is a relation.
    everything = sum(len(p.relations) for p in predictor.predict_batch(TEXTS[:3]))
    none = Predictor.from_pretrained(predictor_path(predictor), relation_threshold=1.0, progress=False)
    assert everything > 0 and sum(len(p.relations) for p in none.predict_batch(TEXTS[:3])) == 0


def test_symmetric_relation_once_per_pair(predictor):
    for pred in predictor.predict_batch(TEXTS[:3]):
        fights = [r for r in pred.relations if r.label == "FIGHTS"]
        pairs = [frozenset((r.head.id, r.tail.id)) for r in fights]
        assert len(pairs) == len(set(pairs)) and all(r.symmetric and r.head.start < r.tail.start for r in fights)
        bi = [i for i in pred.to_labelstudio()["result"] if i["type"] == "relation" and i["labels"] == ["FIGHTS"]]
        assert len(bi) == len(fights) and all(i["direction"] == "bi" for i in bi)
    assert any(r.label == "FIGHTS" for p in predictor.predict_batch(TEXTS[2:3]) for r in p.relations)


def test_four_threads_share_one_predictor(predictor):
    expected = predictor.predict_batch(TEXTS)
    results: dict[int, list] = {}

    def work(k):
        results[k] = [predictor.predict(t) for t in TEXTS[k:] + TEXTS[:k]]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    # One text at a time in every thread: the same shapes as a single-threaded predict().
    single = [predictor.predict(t) for t in TEXTS]
    for k in range(4):
        assert results[k] == single[k:] + single[:k]
    assert rounded(single) == rounded(expected)


def test_progress_bar_when_asked(predictor, monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    predictor.predict_batch(TEXTS, progress=True, chunk_size=5)
    assert "15/15" in err.getvalue()
    err.truncate(0)
    predictor.predict_batch(TEXTS, progress=False)
    assert err.getvalue().strip("\x00") == ""


@pytest.mark.parametrize("bad, match", [
    ({"a": "text"}, "mapping"), ("one text", "use predict"), ([1], "expected a str"),
    (["\ud800 lone"], "lone surrogate"), ([b"\xff\xfe"], "not UTF-8")])
def test_bad_batches_are_input_errors(predictor, bad, match):
    with pytest.raises(InputError, match=match):
        predictor.predict_batch(bad)


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_bad_batch_sizes(predictor, size):
    with pytest.raises(InputError, match="batch_size"):
        predictor.predict_batch(TEXTS[:1], batch_size=size)


def test_utf8_bom_is_not_part_of_the_text(predictor):
    text = TEXTS[0]
    with_bom = predictor.predict(b"\xef\xbb\xbf" + text.encode())
    assert with_bom == predictor.predict(text) and with_bom.text == text


def test_no_entity_without_a_letter_or_digit(predictor):
    text = "Wagner Group ... !!! 🙂 -- Bakhmut"
    assert all(any(c.isalnum() for c in e.text) for e in predictor.predict(text).entities)


def predictor_path(predictor):
    return predictor.model.name_or_path
