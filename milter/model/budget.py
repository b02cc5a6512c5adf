"""A per-scan work budget that long loops check cooperatively.

The engine's checks run on the event loop, so a CPU-bound loop cannot be interrupted by
``asyncio.timeout``: the deadline would answer the MTA while the work kept its CPU. The
scan sets a deadline here (a context variable, so each message has its own, and it
follows the message into tasks and threads); loops whose length an attacker controls
call :func:`checkpoint`, which raises :class:`WorkBudgetExceeded` once it has passed.
The engine turns that into a ``LIMIT_EXCEEDED`` finding (limit ``work``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("tocsin_work_deadline", default=None)


class WorkBudgetExceeded(Exception):
    """The scan's work budget ran out at ``where``."""

    def __init__(self, where: str) -> None:
        super().__init__(f"work budget exhausted in {where}")
        self.where = where


def checkpoint(where: str) -> None:
    """Raise :class:`WorkBudgetExceeded` when the current scan is past its deadline."""
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline:
        raise WorkBudgetExceeded(where)


def spent() -> bool:
    """True when the current scan is past its deadline: for loops that stop on their own
    (and keep what they read) rather than raise."""
    deadline = _DEADLINE.get()
    return deadline is not None and time.monotonic() > deadline


@contextmanager
def work_budget(seconds: float) -> Iterator[None]:
    """Run the block under a deadline ``seconds`` from now (nested budgets keep the
    earlier deadline)."""
    deadline = time.monotonic() + seconds
    current = _DEADLINE.get()
    token = _DEADLINE.set(deadline if current is None else min(current, deadline))
    try:
        yield
    finally:
        _DEADLINE.reset(token)
