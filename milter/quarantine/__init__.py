"""Durable quarantine store for held messages, and release by SMTP re-injection.

See docs/quarantine.md for the on-disk layout, the durability guarantees and the
release semantics.
"""

from milter.quarantine.backend import QuarantineBackend
from milter.quarantine.errors import (
    InvalidQuarantineId,
    QuarantineBusy,
    QuarantineConflict,
    QuarantineError,
    QuarantineNotFound,
)
from milter.quarantine.record import QuarantineRecord
from milter.quarantine.release import ReleaseError, ReleaseResult, release
from milter.quarantine.store import QuarantineStore

__all__ = [
    "InvalidQuarantineId",
    "QuarantineBackend",
    "QuarantineBusy",
    "QuarantineConflict",
    "QuarantineError",
    "QuarantineNotFound",
    "QuarantineRecord",
    "QuarantineStore",
    "ReleaseError",
    "ReleaseResult",
    "release",
]
