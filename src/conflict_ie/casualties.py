"""Casualty counts from the text of a CASUALTY_FIGURE span, by the conventions of the guidelines.

``parse_count("at least 500 Ukrainian children") == CountRange(500, None, False)``.

Hand-written on purpose: the conventions (``"dozens"`` = at least 24, ``"nearly n"``
= at most n-1, ``"a 2-year-old child"`` = 1) are the project's own, and no number
parsing library knows them; number words are handled by a small table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
# Phrases rewritten to digits before parsing, so that "more than a dozen" reads as "more than 12".
_REWRITES = [(r"\bhalf a dozen\b", "6"), (r"\ba dozen\b", "12"), (r"\ba (?:pair|couple) of\b", "2"),
             (r"\bboth\b", "2"), (r"\ba score of\b", "20")]
# Vague plural quantifiers: (count_min, count_max).
_VAGUE = [
    ("hundreds of thousands", (200_000, None)),
    ("tens of thousands", (20_000, None)),
    ("thousands", (2000, None)),
    ("hundreds", (200, None)),
    ("scores", (40, None)),
    ("dozens", (24, None)),
    ("several", (2, None)),
    ("a few", (2, None)),
    ("a number of", (2, None)),
    ("a handful of", (2, None)),
    ("numerous", (2, None)),
]
_NUM_WORD = "|".join(sorted(list(_UNITS) + list(_TENS) + list(_SCALES) + ["and", "a"], key=len, reverse=True))
_NUMBER = re.compile(
    r"(?<![\w.,])("
    r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?:\s*(?:million|billion|thousand))?"  # 1,200
    r"|\d+(?:\.\d+)?(?:\s*(?:million|billion|thousand|hundred))?"  # 22, 1.2 million
    r"|(?:(?:" + _NUM_WORD + r")(?:[\s-]+|$))*(?:" + "|".join(list(_UNITS) + list(_TENS) + list(_SCALES)) + r")"
    r")(?!\w)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class CountRange:
    """``count_min``/``count_max`` are whole numbers or None (unknown); ``approximate`` for about/around."""

    count_min: int | None
    count_max: int | None
    approximate: bool = False


def words_to_number(phrase: str) -> int | None:
    """``"one hundred and five"`` -> 105; ``"twenty-one"`` -> 21; digits too (``"1,200"``, ``"1.2 million"``).

    Example:
        >>> words_to_number("two thousand three hundred"), words_to_number("1.5 million")
        (2300, 1500000)
    """
    phrase = phrase.strip().lower()
    m = re.fullmatch(r"([\d,]+(?:\.\d+)?)\s*(million|billion|thousand|hundred)?", phrase)
    if m:
        value = float(m.group(1).replace(",", ""))
        if m.group(2):
            value *= _SCALES[m.group(2)]
        return int(round(value))
    total, current, seen = 0, 0, False
    for word in re.split(r"[\s-]+", phrase):
        if word in ("and", "a", ""):
            if word == "a":
                current = max(current, 1)
            continue
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
        else:
            return None
        seen = True
    return total + current if seen else None


def _numbers(text: str) -> list[tuple[int, int, int]]:
    """(start, end, value) of counts in ``text``, skipping ages and measures ("2-year-old", "18-year-old")."""
    out = []
    for m in _NUMBER.finditer(text):
        raw = m.group(1)
        after = text[m.end() : m.end() + 12].lower()
        if re.match(r"-?\s?(year|month|week|day)s?-old", after):
            continue
        value = words_to_number(raw)
        if value is not None and raw.strip().lower() not in ("a", "and"):
            out.append((m.start(1), m.end(1), value))
    return out


def parse_count(text: str) -> CountRange:
    """Count range of a casualty phrase, following the guidelines' table exactly.

    Example:
        >>> parse_count("at least 500 Ukrainian children")
        CountRange(count_min=500, count_max=None, approximate=False)
        >>> parse_count("10-12 Russian soldiers")
        CountRange(count_min=10, count_max=12, approximate=False)
        >>> parse_count("a 2-year-old child")
        CountRange(count_min=1, count_max=1, approximate=False)
    """
    t = " ".join(text.lower().replace("–", "-").replace("—", "-").split())
    for pattern, digits in _REWRITES:
        t = re.sub(pattern, digits, t)
    # "two dozen" -> 24
    t = re.sub(r"\b(\w+) dozen\b(?! of)", lambda m: str(words_to_number(m.group(1)) * 12)
               if words_to_number(m.group(1)) else m.group(0), t)
    between = re.match(r"(.*?\bbetween )(.+?) and (.+)$", t)
    if between:
        lo = words_to_number(between.group(2))
        rest = between.group(3).split()
        hi = next((words_to_number(" ".join(rest[:k])) for k in range(len(rest), 0, -1)
                   if words_to_number(" ".join(rest[:k])) is not None), None)
        if lo is not None and hi is not None:
            approx = bool(re.search(r"\b(about|around|some|roughly|approximately)\s*$", between.group(1)[:-8]))
            return CountRange(min(lo, hi), max(lo, hi), approx)
    nums = _numbers(t)
    # Ranges: "10-12", "10 to 12", "between 10 and 12", "10 or 12".
    if len(nums) >= 2:
        (s1, e1, a), (s2, _, b) = nums[0], nums[1]
        gap = t[e1:s2].strip()
        if gap in ("-", "to", "or"):
            lo, hi = min(a, b), max(a, b)
            return CountRange(lo, hi, bool(re.search(r"\b(about|around|some|roughly|approximately)\s*$", t[:s1])))
    if nums:
        start, end, n = nums[0]
        before, after = t[:start].strip(), t[end:].strip()
        if re.search(r"\b(at least|no fewer than|no less than|a minimum of)$", before) or re.match(
            r"(or more|or more than|and more|plus)\b", after
        ):
            return CountRange(n, None)
        if re.search(r"\b(up to|as many as|at most|no more than|a maximum of)$", before):
            return CountRange(None, n)
        if re.search(r"\b(more than|over|upwards of|in excess of|above)$", before):
            return CountRange(n + 1, None)
        if re.search(r"\b(fewer than|less than|under|below)$", before):
            return CountRange(None, n - 1)
        if re.search(r"\b(nearly|almost|close to|just under)$", before):
            return CountRange(None, n - 1)
        if re.search(r"\b(about|around|some|roughly|approximately|an estimated|estimated|circa)$", before):
            return CountRange(n, n, True)
        return CountRange(n, n)
    for phrase, (lo, hi) in _VAGUE:
        if re.search(rf"(?<!\w){phrase}(?!\w)", t):
            return CountRange(lo, hi)
    # An article with a singular noun counts one: "a child", "an elderly man".
    if re.match(r"(a|an|one|another|the only)\s", t):
        return CountRange(1, 1)
    return CountRange(None, None)
