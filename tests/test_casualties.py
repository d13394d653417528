"""The count conventions of the annotation guidelines, phrase by phrase."""

import re

import pytest

from conflict_ie.casualties import CountRange, parse_count, words_to_number
from conftest import shared_or_skip

N = None
TABLE = [
    # exact
    ("22 people", 22, 22), ("two men", 2, 2), ("both brothers", 2, 2), ("five children", 5, 5),
    ("a 2-year-old child", 1, 1), ("two 18-year-old conscripts", 2, 2), ("an elderly woman", 1, 1),
    ("one soldier", 1, 1), ("1,200 civilians", 1200, 1200), ("1.2 million people", 1_200_000, 1_200_000),
    ("twenty-one soldiers", 21, 21), ("one hundred and five villagers", 105, 105), ("Seven policemen", 7, 7),
    ("14 villagers", 14, 14), ("three women", 3, 3), ("four children", 4, 4), ("eleven fishermen", 11, 11),
    ("thirty-five miners", 35, 35), ("two thousand families", 2000, 2000), ("3,400 refugees", 3400, 3400),
    ("a dozen soldiers", 12, 12), ("a police officer", 1, 1), ("a pair of journalists", 2, 2),
    ("1.5 million Syrians", 1_500_000, 1_500_000), ("12,000 displaced people", 12000, 12000),
    ("a 7-year-old boy", 1, 1), ("three 20-year-old students", 3, 3), ("nine of the hostages", 9, 9),
    ("Eleven of the victims", 11, 11), ("2 million people", 2_000_000, 2_000_000), ("an aid worker", 1, 1),
    ("half a dozen fighters", 6, 6), ("two dozen civilians", 24, 24), ("ninety-nine prisoners", 99, 99),
    ("one hundred people", 100, 100), ("a hundred villagers", 100, 100), ("seventeen peacekeepers", 17, 17),
    # ranges
    ("10-12 Russian soldiers", 10, 12), ("10 to 12 people", 10, 12), ("between 10 and 12 civilians", 10, 12),
    ("15 to 20 people", 15, 20), ("between 30 and 40 civilians", 30, 40), ("30–40 fighters", 30, 40),
    ("two or three guards", 2, 3), ("between five and seven children", 5, 7), ("100-150 families", 100, 150),
    # at least / no fewer than / n or more
    ("at least 500 Ukrainian children", 500, N), ("at least 12 soldiers", 12, N), ("no fewer than 30 people", 30, N),
    ("40 or more villagers", 40, N), ("at least two children", 2, N), ("At least 1,000 people", 1000, N),
    # more than / over
    ("more than 2,300 people", 2301, N), ("over 50 people", 51, N), ("More than 500 prisoners", 501, N),
    ("more than 60,000 residents", 60001, N), ("more than a dozen soldiers", 13, N),
    ("upwards of 200 people", 201, N),
    # up to / as many as / at most
    ("up to 30 people", N, 30), ("as many as 80 civilians", N, 80), ("at most 10 fighters", N, 10),
    ("no more than four casualties", N, 4),
    # fewer than / less than / under
    ("fewer than 20 people", N, 19), ("less than 100 soldiers", N, 99), ("under 10 civilians", N, 9),
    # nearly / almost
    ("nearly 5,000 people", N, 4999), ("almost 200 fighters", N, 199), ("nearly two dozen people", N, 23),
    # vague quantifiers
    ("dozens of civilians", 24, N), ("scores of people", 40, N), ("hundreds of residents", 200, N),
    ("thousands of families", 2000, N), ("hundreds of thousands of people", 200_000, N), ("several soldiers", 2, N),
    ("a few villagers", 2, N), ("a number of civilians", 2, N), ("Dozens", 24, N), ("hundreds more", 200, N),
    ("tens of thousands of people", 20_000, N), ("the hundreds who had perished", 200, N),
    # no count
    ("civilians", N, N), ("many people", N, N), ("casualties", N, N), ("the victims", N, N), ("the dead", N, N),
    ("significant losses", N, N), ("their captives", N, N), ("some soldiers", N, N),
]
APPROX = [
    ("about 90,000 people", 90000), ("around 40 people", 40), ("some 300 families", 300), ("roughly 15 soldiers", 15),
    ("approximately 2,000 residents", 2000), ("about two dozen", 24),
]


# The exact-count examples of the guidelines spell their number in words; their values, by hand.
GUIDELINE_WORDS = {"two": 2, "both": 2}


def guideline_cases():
    """Every phrase of the guidelines' count-conventions table, with the count_min/count_max it prescribes.

    Patterns with ``n`` are instantiated with n = 37 (a number no example uses) and a head noun.
    """
    text = shared_or_skip("spec", "annotation-guidelines.md").read_text(encoding="utf-8")
    section = text.split("### Count conventions", 1)[1]
    n = 37
    cases, lines = [], 0
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| phrase"):
            continue
        lines += 1
        phrase_cell, lo_cell, hi_cell = (c.strip() for c in line.strip().strip("|").split("|"))
        for quoted in re.findall(r'"([^"]+)"', phrase_cell):
            head, _, rest = quoted.partition(" ")
            alternatives = [f"{w} {rest}" for w in head.split("/")] if "/" in head else [quoted]
            for pattern in alternatives:
                words = pattern.split()
                if "n" in words:
                    phrase, numbers = " ".join(str(n) if w == "n" else w for w in words) + " people", [n]
                elif lo_cell == "low":
                    phrase, numbers = pattern + " people", [int(x) for x in re.findall(r"\d+", pattern)]
                else:
                    phrase = pattern
                    numbers = [int(x) for x in re.findall(r"\d+", pattern)] or [GUIDELINE_WORDS.get(words[0])]
                env = {"n": numbers[0], "n+1": numbers[0] + 1 if numbers[0] else None,
                       "n-1": numbers[0] - 1 if numbers[0] else None, "low": numbers[0], "high": numbers[-1],
                       "null": None}

                def value(cell):
                    cell = cell.split(" (")[0]
                    return env[cell] if cell in env else int(cell)

                cases.append((phrase, value(lo_cell), value(hi_cell), "approximate: true" in hi_cell))
    return cases, lines


def test_every_guideline_convention():
    cases, lines = guideline_cases()
    assert lines >= 10 and len(cases) > lines  # the table was found and every row gave phrases
    wrong = [(phrase, (lo, hi, approx), parse_count(phrase)) for phrase, lo, hi, approx in cases
             if parse_count(phrase) != CountRange(lo, hi, approx)]
    assert wrong == []
    assert ("more than 37 people", 38, None, False) in cases and ("nearly 37 people", None, 36, False) in cases


@pytest.mark.parametrize("phrase, lo, hi", TABLE)
def test_count(phrase, lo, hi):
    assert parse_count(phrase) == CountRange(lo, hi, False)


@pytest.mark.parametrize("phrase, n", APPROX)
def test_approximate(phrase, n):
    assert parse_count(phrase) == CountRange(n, n, True)


def test_words_to_number():
    assert words_to_number("twenty-one") == 21
    assert words_to_number("one hundred and five") == 105
    assert words_to_number("1,200") == 1200
    assert words_to_number("banana") is None
