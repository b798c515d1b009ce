"""Typed errors. The library raises these; only the CLI turns them into messages and exit codes."""

from __future__ import annotations


class QAError(Exception):
    """Base class of every error qa raises on purpose."""


class InputError(QAError):
    """Input that cannot be read: names the file, the line (or record) and the field."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message, self.file, self.line, self.field = message, file, line, field
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{field + ': ' if field else ''}{message}")

    def __reduce__(self):  # keep the fields when the error crosses a process boundary
        return _rebuild, (type(self), self.message, {"file": self.file, "line": self.line, "field": self.field})


class RubricError(QAError):
    """A rubric YAML file that does not validate: names the file and the key path."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.message, self.file, self.key = message, file, key
        super().__init__(f"{file or '<rubric>'}: {('[' + key + '] ') if key else ''}{message}")

    def __reduce__(self):
        return _rebuild, (type(self), self.message, {"file": self.file, "key": self.key})


class ModelError(QAError):
    """A model directory that is missing, incomplete or does not match the rubric."""


def _rebuild(cls, message, fields):
    return cls(message, **fields)
