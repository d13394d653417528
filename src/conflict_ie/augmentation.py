"""Training-data augmentation for the entity model: mention replacement.

Dai & Adel (COLING 2020, "An Analysis of Simple Data Augmentation for Named Entity
Recognition") found that replacing entity mentions by other mentions of the same label, taken
from the training set, helps most when the training set is small; of their four operations it
is the one that cannot make a sentence say something the labels no longer match (a location
stays a location). Here it works on whole documents and character spans, so the copies go
through the same tokenizer alignment as the originals. It is written here rather than taken
from a library because the augmentation libraries work on token lists with BIO tags, and the
project's training data are character spans over raw text.

Only the entity model sees the copies; the relation model, validation and test never do.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from typing import Sequence

from conflict_ie.documents import Document, Span


def mention_pool(docs: Sequence[Document]) -> dict[str, list[str]]:
    """Every mention text per label, in document order (repeats kept, so frequent names stay frequent).

    Example:
        >>> d = Document("1", "Mosul and Raqqa", (Span("a", 0, 5, "Location"), Span("b", 10, 15, "Location")))
        >>> mention_pool([d])
        {'Location': ['Mosul', 'Raqqa']}
    """
    pool: dict[str, list[str]] = defaultdict(list)
    for doc in docs:
        for span in doc.spans:
            pool[span.label].append(doc.span_text(span))
    return dict(pool)


def replace_mentions(doc: Document, pool: dict[str, list[str]], rate: float, rng: random.Random,
                     suffix: str = "aug") -> Document:
    """A copy of ``doc`` in which each mention is, with probability ``rate``, swapped for a mention
    of the same label drawn from ``pool``; offsets are shifted, span ids and relations are kept.

    Example:
        >>> d = Document("7", "Troops left Mosul today.", (Span("a", 12, 17, "Location"),))
        >>> new = replace_mentions(d, {"Location": ["Deir ez-Zor"]}, 1.0, random.Random(0))
        >>> new.text, new.span_text(new.spans[0]), new.id
        ('Troops left Deir ez-Zor today.', 'Deir ez-Zor', '7#aug')
    """
    pieces: list[str] = []
    spans: list[Span] = []
    cursor = 0
    shift = 0
    for span in sorted(doc.spans, key=lambda s: (s.start, s.end)):
        if span.start < cursor:  # an overlapping span (not in the project's schemas): left as it is
            spans.append(replace(span, start=span.start + shift, end=span.end + shift))
            continue
        pieces.append(doc.text[cursor : span.start])
        original = doc.span_text(span)
        candidates = pool.get(span.label) or [original]
        new = rng.choice(candidates) if rng.random() < rate else original
        start = span.start + shift
        pieces.append(new)
        spans.append(replace(span, start=start, end=start + len(new)))
        shift += len(new) - len(original)
        cursor = span.end
    pieces.append(doc.text[cursor:])
    return replace(doc, id=f"{doc.id}#{suffix}", text="".join(pieces), spans=tuple(spans))


def mention_replacement(docs: Sequence[Document], *, copies: int, rate: float, seed: int) -> list[Document]:
    """``copies`` augmented copies of every document (the originals are not included); deterministic
    for a seed. The pool is built from ``docs`` only, so no mention leaks in from other splits.

    Example:
        >>> d = Document("1", "Mosul and Raqqa", (Span("a", 0, 5, "Location"), Span("b", 10, 15, "Location")))
        >>> [x.id for x in mention_replacement([d], copies=2, rate=0.5, seed=3)]
        ['1#aug1', '1#aug2']
    """
    if copies < 0 or not 0.0 <= rate <= 1.0:
        raise ValueError(f"copies must be >= 0 and rate in [0, 1], got copies={copies}, rate={rate}")
    pool = mention_pool(docs)
    rng = random.Random(seed)
    return [replace_mentions(doc, pool, rate, rng, suffix=f"aug{k}") for k in range(1, copies + 1) for doc in docs]
