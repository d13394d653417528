import subprocess
import sys

import pytest

from conflict_ie.errors import ConfigError
from conflict_ie.schema import LabelSchema
from conftest import ROOT


def test_bio_tags_and_maps(schema):
    assert schema.bio_tags[0] == "O"
    assert len(schema.bio_tags) == 1 + 2 * len(schema.entity_labels)
    assert schema.label2id["B-WEAPON"] == schema.bio_tags.index("B-WEAPON")
    assert {v: k for k, v in schema.id2label.items()} == schema.label2id


def test_relation_argument_types(schema):
    assert schema.allows("AFFILIATED_WITH", "OFFICIAL", "LOCATION")
    assert not schema.allows("AFFILIATED_WITH", "LOCATION", "OFFICIAL")  # direction matters
    assert not schema.allows("PERPETRATOR", "CASUALTY_FIGURE", "LOCATION")
    assert not schema.allows("NO_SUCH", "OFFICIAL", "LOCATION")


def test_checked_in_labeling_config_matches_schema(schema):
    assert (ROOT / "annotations" / "labeling_config.xml").read_text() == schema.labelstudio_config()


def test_labeling_config_has_every_part(schema):
    xml = schema.labelstudio_config()
    for label in schema.entity_labels:
        assert f'<Label value="{label}"' in xml
    assert 'perRegion="true"' in xml and '<Choices name="casualty_type"' in xml
    for rel in schema.relation_labels:
        assert f'<Relation value="{rel}"' in xml


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: x\nentities:\n  - label: A\n    colour: red\n")
    with pytest.raises(ConfigError, match="colour"):
        LabelSchema.load(p)


def test_relation_with_unknown_label_rejected():
    with pytest.raises(ConfigError, match="unknown entity label 'B'"):
        LabelSchema.from_dict({"name": "x", "entities": [{"label": "A"}],
                               "relations": [{"label": "R", "pairs": [["A", "B"]]}]})


def test_round_trip(schema, tmp_path):
    schema.save(tmp_path / "s.yaml")
    assert LabelSchema.load(tmp_path / "s.yaml") == schema


def test_compatibility_names_difference(schema):
    other = LabelSchema.from_dict({**schema.to_dict(), "entities": schema.to_dict()["entities"][:-1],
                                   "relations": []})
    with pytest.raises(ConfigError, match=r"only in the given schema: \['WEAPON'\]"):
        schema.check_compatible(other)


def test_cli_prints_config(schema):
    out = subprocess.run([sys.executable, "-m", "conflict_ie.cli", "schema", "labelstudio-config", "--schema",
                          str(ROOT / "configs/schema/conflict.yaml")], capture_output=True, text=True, check=True)
    assert out.stdout == schema.labelstudio_config()
