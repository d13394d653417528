"""What a prediction returns: entities, relations and casualty records of one text.

Plain frozen dataclasses with character offsets and scores. They hold no ``dict``
(per-region attributes are a tuple of ``(name, value)`` pairs), so every result is
immutable and hashable: a set of predictions, or a prediction as a cache key, works.

Example:
    >>> e = Entity("LOCATION", 0, 4, "Kyiv", 0.98, id="e1")
    >>> p = Prediction("Kyiv", (e,))
    >>> p.to_dict()["entities"][0]["text"], hash(p) == hash(Prediction("Kyiv", (e,)))
    ('Kyiv', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from conflict_ie.documents import Document, Relation, Span


@dataclass(frozen=True)
class Entity:
    """A predicted entity; ``text == input[start:end]``. ``attributes`` are ``(name, value)`` pairs.

    Example:
        >>> Entity("CASUALTY_FIGURE", 0, 2, "12", 0.9, "e1", (("casualty_type", "killed"),)).attribute("casualty_type")
        'killed'
    """

    label: str
    start: int
    end: int
    text: str
    score: float
    id: str = ""
    attributes: tuple[tuple[str, str], ...] = ()

    def attribute(self, name: str) -> str | None:
        """The value of attribute ``name``, or None."""
        return next((v for k, v in self.attributes if k == name), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``attributes`` becomes a mapping."""
        return {"label": self.label, "start": self.start, "end": self.end, "text": self.text, "score": self.score,
                "id": self.id, "attributes": dict(self.attributes)}


@dataclass(frozen=True)
class PredictedRelation:
    """A relation between two predicted entities. A symmetric label is reported once per pair, with
    ``symmetric=True`` (head and tail then in text order).

    Example:
        >>> a, b = Entity("ARMED_GROUP", 0, 1, "A", 1.0, "e1"), Entity("ARMED_GROUP", 2, 3, "B", 1.0, "e2")
        >>> PredictedRelation(a, b, "FIGHTS", 0.8, symmetric=True).to_dict()["head"]
        'e1'
    """

    head: Entity
    tail: Entity
    label: str
    score: float
    symmetric: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"head": self.head.id, "head_text": self.head.text, "tail": self.tail.id, "tail_text": self.tail.text,
                "label": self.label, "score": self.score, "symmetric": self.symmetric}


@dataclass(frozen=True)
class CasualtyRecord:
    """One casualty figure as an event-data row."""

    text: str
    start: int
    end: int
    count_min: int | None
    count_max: int | None
    approximate: bool
    casualty_type: str | None
    location: str | None
    perpetrator: str | None
    score: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Prediction:
    """What the predictor found in one text."""

    text: str
    entities: tuple[Entity, ...]
    relations: tuple[PredictedRelation, ...] = ()
    casualties: tuple[CasualtyRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain lists of dicts (``pandas.DataFrame(d["entities"])`` works)."""
        return {
            "text": self.text,
            "entities": [e.to_dict() for e in self.entities],
            "relations": [r.to_dict() for r in self.relations],
            "casualties": [c.to_dict() for c in self.casualties],
        }

    def within(self, regions: Sequence[tuple[int, int]]) -> "Prediction":
        """Only what touches the character ranges ``regions``: the entities overlapping one of them,
        the relations between two such entities, and the casualty records of kept figures.

        This is Label Studio's interactive pre-annotation: the annotator selects a stretch of text
        and asks the model about that stretch only.

        Example:
            >>> p = Prediction("Kyiv and Lviv", (Entity("LOCATION", 0, 4, "Kyiv", 0.9, "e1"),
            ...                                  Entity("LOCATION", 9, 13, "Lviv", 0.8, "e2")))
            >>> [e.text for e in p.within([(8, 11)]).entities]
            ['Lviv']
        """
        def touches(start: int, end: int) -> bool:
            return any(start < r_end and r_start < end for r_start, r_end in regions)

        kept = tuple(e for e in self.entities if touches(e.start, e.end))
        ids = {e.id for e in kept}
        return Prediction(self.text, kept,
                          tuple(r for r in self.relations if r.head.id in ids and r.tail.id in ids),
                          tuple(c for c in self.casualties if touches(c.start, c.end)))

    def to_document(self, doc_id: str = "prediction") -> Document:
        """The prediction as a :class:`Document` (for scoring, or for writing a Label Studio task).

        Example:
            >>> Prediction("Kyiv", (Entity("LOCATION", 0, 4, "Kyiv", 1.0, "e1"),)).to_document().spans[0].label
            'LOCATION'
        """
        spans = tuple(Span(e.id, e.start, e.end, e.label, dict(e.attributes)) for e in self.entities)
        rels = tuple(Relation(r.head.id, r.tail.id, r.label) for r in self.relations)
        return Document(doc_id, self.text, spans, rels)

    def to_labelstudio(self, model_version: str = "conflict_ie", schema=None) -> dict[str, Any]:
        """A Label Studio prediction (``{"result", "score", "model_version"}``) for pre-annotation.

        With ``schema``, a relation the schema declares symmetric is written with ``direction: "bi"``
        (a prediction's own ``symmetric`` flag says the same without one).

        Example:
            >>> p = Prediction("Kyiv", (Entity("LOCATION", 0, 4, "Kyiv", 0.5, "e1"),))
            >>> p.to_labelstudio()["score"]
            0.5
        """
        from conflict_ie.labelstudio import document_results

        scores = {e.id: e.score for e in self.entities}
        symmetric = {r.label for r in self.relations if r.symmetric}
        if schema is not None:
            symmetric |= {r.label for r in schema.relations if r.symmetric}
        result = document_results(self.to_document(), scores=scores, symmetric=symmetric)
        rel_scores = iter(r.score for r in self.relations)
        for item in result:
            if item["type"] == "relation":
                item["score"] = next(rel_scores)
        mean = sum(e.score for e in self.entities) / len(self.entities) if self.entities else 0.0
        return {"result": result, "score": mean, "model_version": model_version}
