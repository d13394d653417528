"""Golden numbers for the relation and casualty metrics, computed by hand in the comments."""

import pytest

from conflict_ie.casualties import parse_count
from conflict_ie.documents import Document, Relation, Span
from conflict_ie.evaluation import casualty_scores, gold_relation_keys, relation_key, relation_scores

LABELS = ("AFFILIATED_WITH", "LOCATED_IN", "PERPETRATOR", "FIGHTS")
G1, G2 = Span("g1", 0, 5, "ARMED_GROUP"), Span("g2", 10, 15, "ARMED_GROUP")
L1, C1 = Span("l1", 20, 25, "LOCATION"), Span("c1", 30, 35, "CASUALTY_FIGURE")
GOLD = Document("d", "x" * 40, (G1, G2, L1, C1), (Relation("g1", "g2", "FIGHTS"), Relation("c1", "l1", "LOCATED_IN"),
                                                  Relation("c1", "g1", "PERPETRATOR")))
# Predicted: FIGHTS in the other direction, LOCATED_IN right, PERPETRATOR to the wrong group, and
# one LOCATED_IN that is not in the gold.
PRED = [(G2, G1, "FIGHTS"), (C1, L1, "LOCATED_IN"), (C1, G2, "PERPETRATOR"), (G1, L1, "LOCATED_IN")]


def scores(symmetric):
    gold = gold_relation_keys(GOLD, symmetric)
    pred = {relation_key("d", h, t, label, symmetric) for h, t, label in PRED}
    return relation_scores(gold, pred, LABELS)


def test_symmetric_relation_matches_in_either_order():
    s = scores({"FIGHTS"})
    # 3 gold, 4 predicted, 2 right (FIGHTS reversed, LOCATED_IN c1->l1): P 2/4, R 2/3, F1 2PR/(P+R) = 4/7.
    assert s["micro"] == pytest.approx({"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7})
    assert s["per_label"]["FIGHTS"] == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1})
    # LOCATED_IN: 2 predicted, 1 right, 1 gold -> P 1/2, R 1, F1 2/3.
    assert s["per_label"]["LOCATED_IN"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert s["per_label"]["PERPETRATOR"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert s["per_label"]["AFFILIATED_WITH"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_directed_relation_needs_the_direction():
    s = scores(set())
    # FIGHTS reversed no longer counts: 1 right of 4 predicted and 3 gold -> P 1/4, R 1/3, F1 2/7.
    assert s["micro"] == pytest.approx({"precision": 0.25, "recall": 1 / 3, "f1": 2 / 7})
    assert s["per_label"]["FIGHTS"]["f1"] == 0.0


def test_a_pair_with_two_labels_counts_twice():
    gold = {relation_key("d", G1, L1, "LOCATED_IN"), relation_key("d", G1, L1, "AFFILIATED_WITH")}
    pred = {relation_key("d", G1, L1, "LOCATED_IN")}
    # Same pair, two gold labels, one predicted: P 1/1, R 1/2, F1 2/3.
    assert relation_scores(gold, pred, LABELS)["micro"] == pytest.approx({"precision": 1.0, "recall": 0.5,
                                                                          "f1": 2 / 3})


def test_casualty_scores_golden():
    text = "12 people were killed, dozens injured and 3 missing in the raid."
    #       0         1         2         3         4         5
    #       0123456789012345678901234567890123456789012345678901234567890
    killed, dozens, missing = (0, 9), (23, 37), (42, 51)
    assert (text[0:9], text[23:37], text[42:51]) == ("12 people", "dozens injured", "3 missing")
    gold = Document("d", text, (Span("a", *killed, "CASUALTY_FIGURE", {"casualty_type": "killed"}),
                                Span("b", *dozens, "CASUALTY_FIGURE", {"casualty_type": "injured"}),
                                Span("c", *missing, "CASUALTY_FIGURE", {"casualty_type": "missing"})))
    pred = [Span("p1", 0, 9, "CASUALTY_FIGURE"),       # exact, type right, count 12 = 12
            Span("p2", 23, 29, "CASUALTY_FIGURE"),     # "dozens": overlaps b, type wrong, count as b's
            Span("p3", 42, 51, "LOCATION")]            # the right span with the wrong label: not found
    out = casualty_scores([gold], [pred], [{"p1": "killed", "p2": "killed", "p3": "missing"}],
                          figure="CASUALTY_FIGURE", type_attribute="casualty_type",
                          count=lambda t: (parse_count(t).count_min, parse_count(t).count_max))
    assert parse_count("dozens").count_min == parse_count("dozens injured").count_min
    # Found 2 of 3 gold figures; types right 1 of 2; counts right 2 of 2.
    assert out == {"type_accuracy": 0.5, "count_exact": 1.0, "n": 2}


def test_casualty_scores_with_nothing_found():
    gold = Document("d", "5 dead", (Span("a", 0, 6, "CASUALTY_FIGURE", {"casualty_type": "killed"}),))
    assert casualty_scores([gold], [[]], [{}], figure="CASUALTY_FIGURE", type_attribute="casualty_type",
                           count=str) == {"type_accuracy": 0.0, "count_exact": 0.0, "n": 0}
