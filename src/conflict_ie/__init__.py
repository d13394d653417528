"""conflict_ie: from Label Studio annotations of conflict news to a fine-tuned extractor.

The heavy parts (torch, transformers) load lazily, so reading data stays fast.

Example:
    >>> from conflict_ie import Entity, Prediction
    >>> Prediction("Kyiv", (Entity("LOCATION", 0, 4, "Kyiv", 1.0, "e1"),)).entities[0].text
    'Kyiv'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from conflict_ie.documents import Document, Relation, Span  # noqa: E402
from conflict_ie.results import CasualtyRecord, Entity, PredictedRelation, Prediction  # noqa: E402
from conflict_ie.schema import LabelSchema  # noqa: E402

__all__ = ["Document", "Span", "Relation", "LabelSchema", "Predictor", "Prediction", "Entity", "PredictedRelation",
           "CasualtyRecord", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from conflict_ie.predictor import Predictor


def __getattr__(name: str) -> Any:
    # Importing the Predictor pulls in torch; only pay for it when it is asked for.
    if name == "Predictor":
        from conflict_ie.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'conflict_ie' has no attribute {name!r}")
