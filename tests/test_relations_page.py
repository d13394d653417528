"""``scripts/relations_page.py`` and ``scripts/compare_relations.py``'s summary: the page's means come
from the results, a difference is called noise only when it is, and one seed gets no verdict."""

import json

import pytest
from conftest import load_script



@pytest.fixture(scope="module")
def page():
    return load_script("relations_page")


@pytest.fixture(scope="module")
def compare():
    return load_script("compare_relations")


def results(compare, label, gold_values):
    seeds = {str(k + 1): {"train_seconds": 60.0,
                          "validation": {"gold_f1": g, "e2e_f1": g / 2, "casualty_type_accuracy": None}}
             for k, g in enumerate(gold_values)}
    return {"label": label, "run": "runs/x", "overrides": [], "seeds": seeds,
            "summary": compare.summarise(seeds, ["validation"])}


def write_page(tmp_path, page, old, new):
    for name, res in (("old", old), ("new", new)):
        (tmp_path / f"{name}.json").write_text(json.dumps(res))
    out = tmp_path / "page.md"
    assert page.main([str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--out", str(out),
                      "--title", "A title"]) == 0
    return out.read_text()


def row(text, name):
    return next(line for line in text.splitlines() if line.startswith(f"| {name}"))


def test_summary_is_the_mean_and_spread_of_the_seeds(compare):
    s = results(compare, "x", [0.4, 0.5, 0.6])["summary"]
    assert s["validation.gold_f1"] == {"mean": 0.5, "sd": 0.1, "values": [0.4, 0.5, 0.6]}
    assert "validation.casualty_type_accuracy" not in s  # no values, no row
    assert s["train_seconds_mean"] == 60.0


def test_verdicts_follow_the_spread(tmp_path, page, compare):
    text = write_page(tmp_path, page, results(compare, "old", [0.40, 0.50, 0.60]),
                      results(compare, "new", [0.45, 0.55, 0.65]))
    assert text.startswith("# A title")
    assert "0.550 ± 0.100 (0.450, 0.550, 0.650)" in row(text, "relations, gold entities")
    assert "+0.050 (within seed noise)" in row(text, "relations, gold entities")
    text = write_page(tmp_path, page, results(compare, "old", [0.40, 0.41, 0.42]),
                      results(compare, "new", [0.30, 0.31, 0.32]))
    assert "-0.100 (worse)" in row(text, "relations, gold entities")


def test_one_seed_gets_no_verdict(tmp_path, page, compare):
    text = write_page(tmp_path, page, results(compare, "old", [0.40]), results(compare, "new", [0.30]))
    assert "-0.100 (one seed: noise not measured)" in row(text, "relations, gold entities")
    assert "worse" not in text and "better" not in text
