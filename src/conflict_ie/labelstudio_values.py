"""Checks on the single values of a Label Studio export: offsets, label lists, result types, times, strings.

Every reader of an export (:mod:`conflict_ie.labelstudio`, :mod:`conflict_ie.labelstudio_regions`,
:mod:`conflict_ie.labelstudio_json_min`) asks these functions, so that one rule holds everywhere:
nothing is coerced silently. An offset is a whole number (a JSON integer, or a float such as
``5.0`` that is one; never ``true``, ``5.5``, ``"5"`` or ``1e309``); a label list is a list of
strings (``"ARMED_GROUP"`` alone is refused with a message, not read as eleven one-letter
labels); a result ``type`` is one of Label Studio's own, spelled as Label Studio spells them; a
timestamp is an ISO 8601 time, compared as a time (so ``+02:00`` and ``Z`` order correctly).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from conflict_ie.documents import ZERO_WIDTH, is_blank, trimmed  # noqa: F401  (re-exported)
from conflict_ie.errors import InputError

#: Result types of Label Studio's other control tags: read past (with a warning naming the region), not refused.
OTHER_RESULT_TYPES = frozenset({
    "textarea", "rating", "number", "datetime", "taxonomy", "pairwise", "ranker", "rectangle", "polygon",
    "keypoint", "brush", "ellipse", "magicwand", "videorectangle", "bitmask", "vector", "relations",
})

#: The start of the year-1 range, UTC: the time of an annotation that has none (it sorts first).
OLDEST = datetime.min.replace(tzinfo=timezone.utc)


def json_type(value: Any) -> str:
    """The JSON name of a value's type, with an article, for messages.

    Example:
        >>> json_type("x"), json_type({}), json_type(None), json_type(True), json_type(2.5)
        ('a string', 'an object', 'null', 'a boolean', 'a number')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def whole_number(value: Any) -> int | None:
    """``value`` as an offset: an int, or a float that is a whole number; else None.

    Example:
        >>> [whole_number(v) for v in (5, 5.0, 5.5, True, "5", float("inf"), None)]
        [5, 5, None, None, None, None, None]
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def not_an_offset(value: Any) -> str:
    """Why ``value`` is not an offset, for a message.

    Example:
        >>> not_an_offset(True), not_an_offset(float("inf")), not_an_offset(2.5)
        ('a boolean (True), not a whole number', 'infinite, not a whole number', '2.5, not a whole number')
    """
    if isinstance(value, bool):
        return f"a boolean ({value}), not a whole number"
    if isinstance(value, float) and math.isinf(value):
        return "infinite, not a whole number"
    if isinstance(value, float) and math.isnan(value):
        return "NaN, not a whole number"
    if isinstance(value, float):
        return f"{value!r}, not a whole number"
    return f"{json_type(value)} ({value!r}), not a whole number"


def is_id(value: Any) -> bool:
    """A usable region or task id: a non-empty string or an integer (not a boolean)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value != "")


def task_id_of(task: Mapping[str, Any], index: int | None = None, where: str | None = None) -> Any:
    """A task's (or JSON_MIN row's) id; ``#INDEX`` when it has none; an :class:`InputError` when it is no id.

    Example:
        >>> task_id_of({"id": 7}), task_id_of({}, 3)
        (7, '#3')
    """
    raw = task.get("id")
    if raw is None or raw == "":
        return f"#{index}" if index is not None else None
    if not is_id(raw):
        raise InputError(f"task id is {json_type(raw)} ({raw!r}), not an integer or a string", source=where,
                         task=f"#{index}" if index is not None else None, field="id", reason="malformed_task")
    return raw


def one_label(value: Any, what: str, noun: str = "labels") -> tuple[str | None, str | None]:
    """``(label, None)`` when ``value`` is a list of exactly one string, else ``(None, why)``.

    ``why`` begins with ``has`` when the list holds strings but not exactly one of them.

    Example:
        >>> one_label(["LOCATION"], "value.labels")
        ('LOCATION', None)
        >>> one_label("LOCATION", "value.labels")[1]
        "value.labels is the string 'LOCATION', not a list of labels; write ['LOCATION']"
        >>> one_label(["killed", "injured"], "value.choices", "choices")[1]
        "has 2 choices ['killed', 'injured']; exactly one is needed"
    """
    if isinstance(value, str):
        return None, f"{what} is the string {value!r}, not a list of {noun}; write [{value!r}]"
    if not isinstance(value, list):
        return None, f"{what} is {json_type(value)}, not a list of {noun}"
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        return None, f"{what} holds {json_type(bad[0])} ({bad[0]!r}); {noun} are strings"
    if len(value) != 1:
        return None, f"has {len(value)} {noun} {value}; exactly one is needed"
    return value[0], None


def result_kind(kind: Any) -> str:
    """What a result item is, from its ``type``: ``labels``, ``choices``, ``relation``, ``other`` (another
    Label Studio control tag, not used) or ``unknown`` (missing, misspelt or mis-cased: refused).

    Example:
        >>> [result_kind(k) for k in ("labels", "hypertextlabels", "Labels", None, "textarea", "label")]
        ['labels', 'labels', 'unknown', 'unknown', 'other', 'unknown']
    """
    if not isinstance(kind, str):
        return "unknown"
    if kind in ("relation", "choices"):
        return kind
    if kind.endswith("labels") and kind.isalpha() and kind.islower():
        return "labels"
    if kind in OTHER_RESULT_TYPES:
        return "other"
    return "unknown"


def unknown_kind(kind: Any) -> str:
    """The message for a result whose ``type`` is not Label Studio's."""
    if kind is None:
        return "result has no type; Label Studio writes 'labels', 'choices' or 'relation'"
    if isinstance(kind, str) and result_kind(kind.lower()) != "unknown":
        return f"result type {kind!r} is not Label Studio's spelling; did you mean {kind.lower()!r}?"
    return f"result type {kind!r} is not a Label Studio result type ('labels', 'choices', 'relation', ...)"


def parse_time(value: Any) -> datetime:
    """An ISO 8601 time as an aware UTC datetime; no time at all (``None``, ``""``) is the oldest.

    A time without an offset is read as UTC; ``Z`` is UTC. Anything else raises ``ValueError``.

    Example:
        >>> parse_time("2024-01-01T12:00:00+02:00") < parse_time("2024-01-01T11:00:00Z")
        True
        >>> parse_time(None) == OLDEST, parse_time("2024-01-02").isoformat()
        (True, '2024-01-02T00:00:00+00:00')
    """
    if value is None or value == "":
        return OLDEST
    if not isinstance(value, str):
        raise ValueError(f"is {json_type(value)}, not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z").replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not an ISO 8601 time") from None


def lone_surrogate(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) in ``value`` that holds a lone surrogate, else None.

    JSON's ``"\\ud800"`` escapes decode to one; no file, tokenizer or Arrow column can hold it.

    Example:
        >>> lone_surrogate({"data": {"text": "ok", "tags": ["x", "\\ud800"]}})
        'data.tags[1]'
    """
    for where, item in _walk(value, path):
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return where or "(top level)"
    return None


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, Mapping):
            for key, sub in item.items():
                name = str(key) if str(key).isprintable() else repr(key)
                child = f"{where}.{name}" if where else name
                yield child, key
                stack.append((child, sub))
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{where}[{i}]", sub) for i, sub in reversed(list(enumerate(item))))
        else:
            yield where, item
