"""The label schema as data: entity labels, per-region attributes, relations.

A schema is a YAML file: a path of your own, or the name of one shipped inside
the package (``conflict``, i.e. ``conflict_ie/schemas/conflict.yaml``, is the
default; ``shipped_schemas()`` lists them). It is loaded once into frozen
dataclasses; everything else in the package (BIO tags, ``id2label``, relation
checks, the Label Studio labeling config) is derived from it, so another schema
works without code changes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from conflict_ie.errors import ConfigError

#: The schemas shipped inside the package (package data, so found wherever it is installed).
SCHEMAS = resources.files("conflict_ie") / "schemas"


def shipped_schemas() -> tuple[str, ...]:
    """Names of the schemas shipped with the package, which ``LabelSchema.load(name)`` takes.

    Example:
        >>> "conflict" in shipped_schemas()
        True
    """
    return tuple(sorted(p.name[: -len(".yaml")] for p in SCHEMAS.iterdir() if p.name.endswith(".yaml")))


@dataclass(frozen=True)
class EntityLabel:
    """One entity label: its name, a one-line description and a display colour."""

    label: str
    description: str = ""
    color: str = "#888888"


@dataclass(frozen=True)
class Attribute:
    """A per-region choice attribute, such as ``casualty_type`` on CASUALTY_FIGURE."""

    name: str
    choices: tuple[str, ...]
    applies_to: tuple[str, ...]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class RelationType:
    """A directed relation label with the (from, to) entity-label pairs it allows.

    ``symmetric`` relations may be drawn as ``bi`` in Label Studio.
    """

    label: str
    pairs: tuple[tuple[str, str], ...]
    description: str = ""
    symmetric: bool = False


@dataclass(frozen=True)
class CasualtyRecordSpec:
    """How a casualty record is read from the predictions: which label is a casualty figure, which
    attribute holds its type, and which relations (figure -> place, figure -> group) give its
    location and perpetrator. Any of the last three may be empty."""

    figure: str
    type_attribute: str = ""
    location_relation: str = ""
    perpetrator_relation: str = ""


def _reject_unknown(where: str, data: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")


def _casualty_records(data: Any, where: str) -> CasualtyRecordSpec | None:
    if data is None:
        return None
    if not isinstance(data, Mapping) or "figure" not in data:
        raise ConfigError(f"{where}: casualty_records is a mapping with at least 'figure'")
    known = {"figure", "type_attribute", "location_relation", "perpetrator_relation"}
    _reject_unknown(f"{where}: casualty_records", data, known)
    return CasualtyRecordSpec(**{k: str(v) for k, v in data.items()})


@dataclass(frozen=True)
class LabelSchema:
    """Entity labels, attributes and relation types of an annotation project.

    Example:
        >>> schema = LabelSchema.load("conflict")
        >>> schema.bio_tags[:3]
        ('O', 'B-ARMED_GROUP', 'I-ARMED_GROUP')
        >>> schema.allows("PERPETRATOR", "CASUALTY_FIGURE", "ARMED_GROUP")
        True
    """

    name: str
    entities: tuple[EntityLabel, ...]
    attributes: tuple[Attribute, ...] = ()
    relations: tuple[RelationType, ...] = ()
    description: str = ""
    text_field: str = "text"
    casualty_records: CasualtyRecordSpec | None = None

    def __post_init__(self) -> None:
        labels = [e.label for e in self.entities]
        if not labels:
            raise ConfigError(f"schema {self.name!r}: no entity labels")
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ConfigError(f"schema {self.name!r}: duplicate entity labels {dup}")
        for label in labels:
            if not label or label == "O" or any(c.isspace() for c in label) or "-" in label[:2]:
                raise ConfigError(f"schema {self.name!r}: invalid entity label {label!r}")
        for attr in self.attributes:
            for target in attr.applies_to:
                if target not in labels:
                    raise ConfigError(
                        f"schema {self.name!r}: attribute {attr.name!r} applies to unknown label "
                        f"{target!r}; known labels are {labels}"
                    )
            if not attr.choices:
                raise ConfigError(f"schema {self.name!r}: attribute {attr.name!r} has no choices")
        rel_labels = [r.label for r in self.relations]
        if len(set(rel_labels)) != len(rel_labels):
            raise ConfigError(f"schema {self.name!r}: duplicate relation labels")
        for rel in self.relations:
            for head, tail in rel.pairs:
                for side in (head, tail):
                    if side not in labels:
                        raise ConfigError(
                            f"schema {self.name!r}: relation {rel.label!r} names unknown entity label "
                            f"{side!r}; known labels are {labels}"
                        )
        spec = self.casualty_records
        if spec is not None:
            if spec.figure not in labels:
                raise ConfigError(f"schema {self.name!r}: casualty_records.figure {spec.figure!r} is not an entity "
                                  f"label; known labels are {labels}")
            if spec.type_attribute and spec.type_attribute not in {a.name for a in self.attributes}:
                raise ConfigError(f"schema {self.name!r}: casualty_records.type_attribute {spec.type_attribute!r} "
                                  "is not an attribute of the schema")
            for key in ("location_relation", "perpetrator_relation"):
                value = getattr(spec, key)
                if value and value not in rel_labels:
                    raise ConfigError(f"schema {self.name!r}: casualty_records.{key} {value!r} is not a relation; "
                                      f"known relations are {rel_labels}")

    # ----------------------------------------------------------------- loading
    @classmethod
    def load(cls, path_or_name: str | Path) -> "LabelSchema":
        """Load a schema from a YAML file, or by the name of a schema shipped with the package.

        An existing file wins: ``conflict`` is the shipped schema unless a file of that name
        is in the working directory. A bare name (no suffix, no folder) reads
        ``conflict_ie/schemas/NAME.yaml`` from the installed package.

        Example:
            >>> LabelSchema.load("conflict").entity_labels[0]
            'ARMED_GROUP'
        """
        path = Path(path_or_name)
        if not path.is_file():
            name = str(path_or_name)
            if path.suffix or path.name != name:
                raise ConfigError(f"schema file not found: {path_or_name} (or give the name of a shipped schema: "
                                  f"{list(shipped_schemas())})")
            path = SCHEMAS / f"{name}.yaml"
            if not path.is_file():
                raise ConfigError(f"unknown schema {name!r}: the package ships {list(shipped_schemas())}; "
                                  "or give the path of a schema YAML file")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "schema") -> "LabelSchema":
        """Build a schema from the YAML structure (unknown keys are errors).

        Example:
            >>> LabelSchema.from_dict({"name": "t", "entities": [{"label": "PER"}]}).bio_tags
            ('O', 'B-PER', 'I-PER')
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: a schema is a mapping with 'name' and 'entities'")
        _reject_unknown(where, data, {"name", "description", "text_field", "entities", "attributes", "relations",
                                     "casualty_records"})
        if "name" not in data or "entities" not in data:
            raise ConfigError(f"{where}: 'name' and 'entities' are required")
        entities = []
        for i, item in enumerate(data["entities"] or []):
            _reject_unknown(f"{where}: entities[{i}]", item, {"label", "description", "color"})
            entities.append(EntityLabel(**{k: str(v) for k, v in item.items()}))
        attributes = []
        for i, item in enumerate(data.get("attributes") or []):
            _reject_unknown(
                f"{where}: attributes[{i}]", item, {"name", "choices", "applies_to", "description", "required"}
            )
            attributes.append(
                Attribute(
                    name=str(item["name"]),
                    choices=tuple(str(c) for c in item.get("choices") or ()),
                    applies_to=tuple(str(c) for c in item.get("applies_to") or ()),
                    description=str(item.get("description", "")),
                    required=bool(item.get("required", False)),
                )
            )
        relations = []
        for i, item in enumerate(data.get("relations") or []):
            _reject_unknown(f"{where}: relations[{i}]", item, {"label", "pairs", "description", "symmetric"})
            pairs = []
            for pair in item.get("pairs") or ():
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise ConfigError(f"{where}: relations[{i}].pairs: each pair is [FROM, TO], got {pair!r}")
                pairs.append((str(pair[0]), str(pair[1])))
            relations.append(
                RelationType(
                    label=str(item["label"]),
                    pairs=tuple(pairs),
                    description=str(item.get("description", "")),
                    symmetric=bool(item.get("symmetric", False)),
                )
            )
        return cls(
            name=str(data["name"]),
            entities=tuple(entities),
            attributes=tuple(attributes),
            relations=tuple(relations),
            description=str(data.get("description", "")),
            text_field=str(data.get("text_field", "text")),
            casualty_records=_casualty_records(data.get("casualty_records"), where),
        )

    def to_dict(self) -> dict[str, Any]:
        """The YAML structure of this schema (``from_dict(to_dict())`` round-trips).

        Example:
            >>> s = LabelSchema.load("conflict")
            >>> LabelSchema.from_dict(s.to_dict()) == s
            True
        """
        return {
            "name": self.name,
            "description": self.description,
            "text_field": self.text_field,
            "entities": [{"label": e.label, "description": e.description, "color": e.color} for e in self.entities],
            "attributes": [
                {
                    "name": a.name,
                    "description": a.description,
                    "applies_to": list(a.applies_to),
                    "required": a.required,
                    "choices": list(a.choices),
                }
                for a in self.attributes
            ],
            "relations": [
                {
                    "label": r.label,
                    "description": r.description,
                    "symmetric": r.symmetric,
                    "pairs": [list(p) for p in r.pairs],
                }
                for r in self.relations
            ],
            **({"casualty_records": dict(vars(self.casualty_records))} if self.casualty_records else {}),
        }

    def save(self, path: str | Path) -> None:
        """Write the schema as YAML (a run folder carries the schema it was trained with)."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")

    # ------------------------------------------------------------- label maps
    @property
    def entity_labels(self) -> tuple[str, ...]:
        """Entity label names in schema order."""
        return tuple(e.label for e in self.entities)

    @property
    def relation_labels(self) -> tuple[str, ...]:
        """Relation label names in schema order."""
        return tuple(r.label for r in self.relations)

    @property
    def bio_tags(self) -> tuple[str, ...]:
        """``O`` then ``B-X``, ``I-X`` for every entity label X (IOB2)."""
        tags = ["O"]
        for label in self.entity_labels:
            tags += [f"B-{label}", f"I-{label}"]
        return tuple(tags)

    @property
    def id2label(self) -> dict[int, str]:
        """Tag index to BIO tag, as ``transformers`` configs want it."""
        return dict(enumerate(self.bio_tags))

    @property
    def label2id(self) -> dict[str, int]:
        """BIO tag to tag index."""
        return {tag: i for i, tag in enumerate(self.bio_tags)}

    def attribute(self, name: str) -> Attribute | None:
        """The attribute called ``name``, or None."""
        return next((a for a in self.attributes if a.name == name), None)

    def attributes_for(self, label: str) -> tuple[Attribute, ...]:
        """The per-region attributes that spans of ``label`` carry."""
        return tuple(a for a in self.attributes if label in a.applies_to)

    def relation(self, label: str) -> RelationType | None:
        """The relation type called ``label``, or None."""
        return next((r for r in self.relations if r.label == label), None)

    def allows(self, relation: str, head_label: str, tail_label: str) -> bool:
        """Whether ``relation`` may go from a ``head_label`` span to a ``tail_label`` span."""
        rel = self.relation(relation)
        if rel is None:
            return False
        if (head_label, tail_label) in rel.pairs:
            return True
        return rel.symmetric and (tail_label, head_label) in rel.pairs

    @property
    def allowed_pairs(self) -> frozenset[tuple[str, str]]:
        """Every (head label, tail label) that some relation allows."""
        out = set()
        for rel in self.relations:
            out.update(rel.pairs)
            if rel.symmetric:
                out.update((t, h) for h, t in rel.pairs)
        return frozenset(out)

    def check_compatible(self, other: "LabelSchema", what: str = "checkpoint", *, relations: bool = True) -> None:
        """Raise if ``other`` has different entity tags (or relation types, with ``relations``),
        naming the difference.

        Example:
            >>> s = LabelSchema.load("conflict")
            >>> s.check_compatible(s)
        """
        problems = []
        if self.bio_tags != other.bio_tags:
            only_self = sorted(set(self.entity_labels) - set(other.entity_labels))
            only_other = sorted(set(other.entity_labels) - set(self.entity_labels))
            detail = f"only in the given schema: {only_self}; only in the {what}: {only_other}"
            if not only_self and not only_other:
                detail = f"same labels in another order: {list(self.entity_labels)} vs {list(other.entity_labels)}"
            problems.append(f"entity labels differ ({detail})")
        mine = {r.label: set(r.pairs) for r in self.relations}
        theirs = {r.label: set(r.pairs) for r in other.relations}
        if relations and mine != theirs:
            diff = sorted(set(mine) ^ set(theirs))
            pairs = sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k])
            problems.append(f"relation types differ (labels only on one side: {diff}; other allowed pairs: {pairs})")
        if problems:
            raise ConfigError(f"the schema does not match the {what}: " + "; ".join(problems))

    # ------------------------------------------------------- Label Studio XML
    def labelstudio_config(self) -> str:
        """Render the Label Studio labeling config (Text, Labels, per-region Choices, Relations).

        Example:
            >>> xml = LabelSchema.load("conflict").labelstudio_config()
            >>> '<Relation value="PERPETRATOR"' in xml
            True
        """
        view = ET.Element("View")
        labels = ET.SubElement(view, "Labels", name="label", toName="text")
        for ent in self.entities:
            ET.SubElement(labels, "Label", value=ent.label, background=ent.color, hint=ent.description)
        ET.SubElement(view, "Text", name="text", value=f"${self.text_field}")
        for attr in self.attributes:
            # Shown only while a region of a matching label is selected.
            wrap = ET.SubElement(view, "View", visibleWhen="region-selected")
            if len(attr.applies_to) == 1:
                wrap.set("whenTagName", "label")
                wrap.set("whenLabelValue", attr.applies_to[0])
            ET.SubElement(wrap, "Header", value=attr.description or attr.name)
            choices = ET.SubElement(
                wrap,
                "Choices",
                name=attr.name,
                toName="text",
                perRegion="true",
                choice="single",
                required="true" if attr.required else "false",
            )
            for choice in attr.choices:
                ET.SubElement(choices, "Choice", value=choice)
        if self.relations:
            rels = ET.SubElement(view, "Relations")
            for rel in self.relations:
                ET.SubElement(rels, "Relation", value=rel.label)
        ET.indent(view, space="  ")
        return ET.tostring(view, encoding="unicode") + "\n"
