"""Errors of the quarantine store: every storage failure is a ``QuarantineError``."""

from __future__ import annotations


class QuarantineError(Exception):
    """A storage failure (disk full, permission, corrupt record); the message says what
    and where."""


class QuarantineNotFound(QuarantineError):
    """No record with this id in the store."""


class InvalidQuarantineId(QuarantineError, ValueError):
    """The text is not a quarantine id (wrong shape; never used as a path)."""


class QuarantineBusy(QuarantineError):
    """Another process is releasing or deleting this record right now."""


class QuarantineConflict(QuarantineError):
    """The record is not in a state that allows this action (already released, or a
    release was interrupted and needs an explicit ``force``)."""
