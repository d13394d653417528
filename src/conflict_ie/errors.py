"""Errors a user can act on. The CLI prints them without a traceback (unless --debug)."""

from __future__ import annotations


class ConflictIEError(Exception):
    """Base class: a problem with the user's input, config or environment, not a bug."""


class ConfigError(ConflictIEError):
    """A schema or training config is invalid (unknown key, wrong type, missing file), or a command-line
    option is (an unknown ``--policy``, unparsable ``--ratios``, an ``--out`` that cannot be written)."""


class InputError(ConflictIEError):
    """An input file is malformed. The message names the file, task, region and field where known.

    The field (the path to the value at fault, as in the file) closes the message, so that the
    message still begins ``FILE, task T, region R:`` as it always has.

    Example:
        >>> str(InputError("is a string, not a list of annotations", source="a.json", task=3, field="annotations"))
        'a.json, task 3: is a string, not a list of annotations (field annotations)'
    """

    def __init__(self, message: str, *, source: str | None = None, task: object = None, region: object = None,
                 reason: str = "invalid", field: str | None = None):
        where = []
        if source is not None:
            where.append(str(source))
        if task is not None:
            where.append(f"task {task}")
        if region is not None:
            where.append(f"region {region}")
        if field is not None:
            message = f"{message} (field {field})"
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.source = source
        self.task = task
        self.region = region
        self.reason = reason
        self.field = field
