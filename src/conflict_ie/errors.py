"""Errors a user can act on. The CLI prints them without a traceback (unless --debug)."""

from __future__ import annotations


class ConflictIEError(Exception):
    """Base class: a problem with the user's input, config or environment, not a bug."""


class ConfigError(ConflictIEError):
    """A schema or training config is invalid (unknown key, wrong type, missing file)."""


class InputError(ConflictIEError):
    """An input file is malformed. The message names the file, task and region where known."""

    def __init__(self, message: str, *, source: str | None = None, task: object = None, region: object = None,
                 reason: str = "invalid"):
        where = []
        if source is not None:
            where.append(str(source))
        if task is not None:
            where.append(f"task {task}")
        if region is not None:
            where.append(f"region {region}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.source = source
        self.task = task
        self.region = region
        self.reason = reason
