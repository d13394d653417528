"""``scripts/effect_re3d.py``'s page: the numbers it prints come from its results file, and a
difference is called noise only when it is."""


import pytest
from conftest import load_script



@pytest.fixture(scope="module")
def effect():
    return load_script("effect_re3d")


def block(f1, per_label, rel=None):
    out = {"strict_f1": f1, "lenient_f1": f1, "strict_precision": f1, "strict_recall": f1,
           "per_label": {k: {"f1": v, "support": 10} for k, v in per_label.items()}}
    if rel is not None:
        out.update(relations_gold_f1=rel, relations_e2e_f1=rel / 2, casualty_type_accuracy=0.9, casualty_n=5)
    return out


def result(config, seed, f1, rel=None):
    b = block(f1, {"ARMED_GROUP": f1, "LOCATION": 0.5}, rel)
    return {"config": config, "seed": seed, "relations": rel is not None, "run": "x", "validation_entity_f1": f1,
            "ner_train_seconds": 60.0, "re3d_heldout": b, "bundled_test": b, "seed_article": b}


def test_the_page_prints_means_seeds_and_noise(effect, tmp_path):
    data = {"re3d_split": [0.7, 0.1, 0.2], "re3d_seed": 13,
            "sizes": {"bundled-only": {"train": 36, "validation": 4, "test": 4},
                      "full": {"train": 95, "validation": 12, "test": 4},
                      "re3d_heldout": 17, "bundled_test": 4, "seed_article": 1},
            "results": [result("bundled-only", 1, 0.50, 0.4), result("bundled-only", 2, 0.60, 0.4),
                        result("full", 1, 0.70, 0.6), result("full", 2, 0.74, 0.6),
                        result("full-x", 1, 0.71), result("full-x", 2, 0.69)],
            "variants": {"full-x": {"base": "full", "overrides": ["ner.class_weight_power=0.5"]}}}
    page = tmp_path / "page.md"
    effect.write_page(data, page)
    text = page.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| entities, strict micro F1"))
    # 0.55 ± 0.071 against 0.72 ± 0.028: a 0.17 gain, larger than either spread.
    assert "0.550 ± 0.071 (0.500 / 0.600)" in row and "0.720 ± 0.028 (0.700 / 0.740)" in row
    assert row.endswith("| +0.170 |")
    loc = next(line for line in text.splitlines() if line.startswith("| LOCATION | 10 |"))
    assert "+0.000 (within seed noise)" in loc
    assert "| full-x | ner.class_weight_power=0.5 | 0.700 ± 0.014 (0.710 / 0.690) |" in text
    assert "Entity scores are over seeds 1, 2; the relation model" not in text  # relations: seeds 1, 2 too


def test_variants_and_digest(effect):
    assert effect.parse_variant("a=full:ner.epochs=2,seed=3") == ("a", "full", ["ner.epochs=2", "seed=3"])
    with pytest.raises(SystemExit, match="BASE one of"):
        effect.parse_variant("a=nosuch:ner.epochs=2")
    with pytest.raises(SystemExit):
        effect.parse_variant("a=full")
    assert effect.annotations_digest() == effect.annotations_digest()
