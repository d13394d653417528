import subprocess
import sys

import pytest

from conflict_ie.errors import ConfigError
from conflict_ie.schema import SCHEMAS, LabelSchema, shipped_schemas


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


@pytest.mark.parametrize("name", shipped_schemas())
def test_shipped_labeling_config_matches_schema(name):
    # The package ships NAME.labeling.xml next to NAME.yaml; it is rendered from the schema, so it cannot drift.
    shipped = (SCHEMAS / f"{name}.labeling.xml").read_text(encoding="utf-8")
    assert shipped == LabelSchema.load(name).labelstudio_config()


def test_shipped_schemas_load_by_name():
    assert "conflict" in shipped_schemas()
    assert LabelSchema.load("conflict") == LabelSchema.load(str(SCHEMAS / "conflict.yaml"))


def test_unknown_schema_name_lists_shipped():
    with pytest.raises(ConfigError, match=r"unknown schema 'no_such'.*\['conflict'"):
        LabelSchema.load("no_such")
    with pytest.raises(ConfigError, match="schema file not found: no/such.yaml"):
        LabelSchema.load("no/such.yaml")


def test_own_file_wins_over_shipped_name(tmp_path, monkeypatch):
    (tmp_path / "conflict").write_text("name: mine\nentities:\n  - label: A\n")
    monkeypatch.chdir(tmp_path)
    assert LabelSchema.load("conflict").name == "mine"


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
                                   "relations": [], "casualty_records": None})
    with pytest.raises(ConfigError, match=r"only in the given schema: \['WEAPON'\]"):
        schema.check_compatible(other)


def test_cli_prints_config(schema):
    out = subprocess.run([sys.executable, "-m", "conflict_ie.cli", "schema", "labelstudio-config", "--schema",
                          str(SCHEMAS / "conflict.yaml")], capture_output=True, text=True, check=True)
    assert out.stdout == schema.labelstudio_config()
    default = subprocess.run([sys.executable, "-m", "conflict_ie.cli", "schema", "labelstudio-config"],
                             capture_output=True, text=True, check=True)
    assert default.stdout == out.stdout
