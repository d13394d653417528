"""Uncertainty of a document under the entity model, for active learning.

The model gives every word a probability distribution over the BIO tags
(:attr:`conflict_ie.predictor.NerOutput.word_probs`, from the window that reads the word
best). A strategy turns one distribution into a word uncertainty ``u`` in ``[0, 1]``:

- ``least-confidence``: ``u = 1 - max_k p_k``
- ``margin``: ``u = 1 - (p_(1) - p_(2))``, the gap between the two likeliest tags
- ``entropy``: ``u = H(p) / log K``, normalised by its maximum over ``K`` tags

A document's **confidence** is ``1 - mean(u)`` over its words: the mean, not the sum,
so that a long article does not rank first for being long (annotation costs grow with
length too), and every word counts, so that an article whose entity words are uncertain
ranks before one whose only doubt is a single token. A text with no words has confidence
1.0 (there is nothing to annotate). The confidence is what ``conflict-ie labelstudio
rank`` and the ML backend write as the Label Studio prediction ``score``: Label Studio's
uncertainty sampling and a Data Manager view ordered by ``predictions_score`` then show
the least certain articles first.

These scores read the per-word distributions, not the decoded (Viterbi) path, and they
ignore the relation model: entities are what annotators spend their time on.

Example:
    >>> import numpy as np
    >>> sure, unsure = np.array([[0.98, 0.01, 0.01]] * 3), np.array([[0.4, 0.35, 0.25]] * 3)
    >>> document_confidence(sure) > document_confidence(unsure)
    True
    >>> round(document_confidence(np.zeros((0, 3))), 1)
    1.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from conflict_ie.errors import InputError

if TYPE_CHECKING:
    import numpy as np

# numpy is imported inside the functions: the CLI reads STRATEGIES for its --strategy choices
# and should not pay for numpy at start-up.
STRATEGIES = ("least-confidence", "entropy", "margin")


def word_uncertainty(probs: np.ndarray, strategy: str = "least-confidence") -> np.ndarray:
    """Per-word uncertainty in ``[0, 1]`` for ``(n_words, n_tags)`` probabilities.

    Example:
        >>> import numpy as np
        >>> word_uncertainty(np.array([[1.0, 0.0], [0.5, 0.5]]), "margin").round(3).tolist()
        [0.0, 1.0]
    """
    import numpy as np

    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"expected (n_words, n_tags) probabilities, got shape {p.shape}")
    if p.shape[0] == 0:
        return np.zeros(0)
    if strategy == "least-confidence":
        u = 1.0 - p.max(axis=1)
    elif strategy == "margin":
        if p.shape[1] < 2:
            return np.zeros(p.shape[0])
        top2 = np.sort(p, axis=1)[:, -2:]
        u = 1.0 - (top2[:, 1] - top2[:, 0])
    else:
        if p.shape[1] < 2:
            return np.zeros(p.shape[0])
        safe = np.clip(p, 1e-12, 1.0)
        u = -(p * np.log(safe)).sum(axis=1) / np.log(p.shape[1])
    return np.clip(u, 0.0, 1.0)


def document_confidence(probs: np.ndarray, strategy: str = "least-confidence") -> float:
    """``1 - mean word uncertainty``: 1.0 is certain; lower means the document is worth annotating."""
    u = word_uncertainty(probs, strategy)
    return 1.0 if u.size == 0 else float(1.0 - u.mean())


def confidences(predictor, texts: Sequence[str], strategy: str = "least-confidence", *,
                batch_size: int = 8) -> list[float]:
    """Document confidence of each text under ``predictor``'s entity model (one forward pass).

    Example:
        >>> # confidences(Predictor.from_pretrained("runs/demo"), ["Kyiv was hit.", "Calm."], "entropy")
    """
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if not texts:
        return []
    return [document_confidence(out.word_probs, strategy) for out in predictor.ner(list(texts), batch_size=batch_size)]


def rank_by_uncertainty(ids: Sequence, scores: Sequence[float]) -> list:
    """``ids`` ordered least confident first (ties keep their order).

    Example:
        >>> rank_by_uncertainty(["a", "b", "c"], [0.9, 0.2, 0.5])
        ['b', 'c', 'a']
    """
    return [i for _, _, i in sorted(zip(scores, range(len(ids)), ids))]
