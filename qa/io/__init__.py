"""Readers and writers: every input format becomes a stream of ``Conversation`` or ``Reject``."""

from qa.io.read import Reject, ReadStats, read_many, read_path

__all__ = ["Reject", "ReadStats", "read_many", "read_path"]
