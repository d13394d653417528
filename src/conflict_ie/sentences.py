"""Sentence boundaries, for choosing relation candidates and their context.

``pysbd`` (a rule-based splitter with no model to download) decides where a
sentence ends, so abbreviations such as "Mr.", "Gen." or "U.S." do not end one;
a line break always does, since news articles are written as paragraphs.

Example:
    >>> s = Sentences.of("Gen. Gerasimov met Mr. Smith in Kyiv. Dnipro was hit.\\nLater, calm.")
    >>> s.bounds
    ((0, 37), (38, 53), (54, 66))
    >>> s.index_of(40)
    1
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache

_PARAGRAPH = re.compile(r"[^\n]+")


@lru_cache(maxsize=1)
def _segmenter():
    # Built once per process: construction compiles pysbd's rule set. ``clean=False`` keeps the
    # text as it is, so that character offsets stay offsets into the input.
    import pysbd

    return pysbd.Segmenter(language="en", clean=False, char_span=False)


#: Room for pysbd's patterns in ``re``'s cache of compiled patterns (it uses about 870).
_REGEX_CACHE = 1024


def _keep_regex_cache_roomy() -> None:
    # pysbd passes pattern strings to ``re.sub`` and friends, so it relies on ``re``'s cache.
    # ``numpy.f2py`` sets ``re._MAXCACHE`` to 50 for the whole process when anything imports it
    # (scipy does, under scikit-learn, under seqeval, which this package imports), and then every
    # paragraph compiled pysbd's patterns again: the benchmark's 52 texts took 3.6 s to split
    # instead of 0.5 s. A private attribute, so only raised where it exists.
    if getattr(re, "_MAXCACHE", _REGEX_CACHE) < _REGEX_CACHE:
        re._MAXCACHE = _REGEX_CACHE


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """Character ranges ``(start, end)`` of the sentences of ``text``, white space excluded.

    Example:
        >>> sentence_bounds("The U.S. said 12 people died. They fled.")
        [(0, 29), (30, 40)]
    """
    _keep_regex_cache_roomy()
    out: list[tuple[int, int]] = []
    for para in _PARAGRAPH.finditer(text):
        pos = para.start()
        for sent in _segmenter().segment(para.group()):
            # pysbd returns the paragraph cut into pieces; locate each piece rather than trusting
            # running lengths, so that a piece it normalised can never shift later offsets.
            start = text.find(sent.strip(), pos, para.end()) if sent.strip() else -1
            if start < 0:
                continue
            end = start + len(sent.strip())
            out.append((start, end))
            pos = end
    return out or [(0, len(text))]


@dataclass(frozen=True)
class Sentences:
    """The sentences of one text, with a lookup from character offset to sentence index."""

    bounds: tuple[tuple[int, int], ...]
    ends: tuple[int, ...]

    @classmethod
    def of(cls, text: str) -> "Sentences":
        bounds = tuple(sentence_bounds(text))
        return cls(bounds, tuple(e for _, e in bounds))

    def index_of(self, pos: int) -> int:
        """Index of the sentence holding character ``pos`` (a gap between sentences counts
        towards the next one; past the end, the last)."""
        return min(bisect.bisect_right(self.ends, pos), len(self.ends) - 1)

    def context(self, first: int, last: int) -> tuple[int, int]:
        """Character range from the start of sentence ``first`` to the end of sentence ``last``."""
        return self.bounds[first][0], self.bounds[last][1]
