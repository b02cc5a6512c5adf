"""Pace of one message on a connection: a total time budget and a minimum data rate.

A slow-loris client (hundreds of connections, a byte every few seconds) would hold every
connection forever if only an idle timeout applied, since each byte restarts it. From
the start of a message (MAIL FROM) to its end, a connection gets ``budget`` seconds in
all, and after ``grace`` seconds it must have sent ``min_rate`` bytes per second on
average. Both front-ends use it (the milter per read, the SMTP filter on a timer).
Pure: the server passes the clock in.
"""

from __future__ import annotations


class SlowClient(Exception):
    """The message is too slow: past its time budget or under the minimum rate."""


class Pace:
    """The clock of the current message on one connection."""

    def __init__(self, budget: float, min_rate: float, grace: float) -> None:
        self.budget = budget
        self.min_rate = min_rate
        self.grace = grace
        self.started = 0.0
        self.bytes = 0

    def start(self, now: float) -> None:
        """Called while not in a message: the next message's clock starts at ``now``."""
        self.started = now
        self.bytes = 0

    def received(self, count: int) -> None:
        """``count`` more bytes arrived."""
        self.bytes += count

    def read_timeout(self, idle: float, now: float) -> float:
        """How long the next read may wait; raises :class:`SlowClient` when too slow."""
        elapsed = now - self.started
        left = self.budget - elapsed
        if left <= 0:
            raise SlowClient(f"message not complete after {self.budget:g} s")
        if elapsed > self.grace and self.bytes < self.min_rate * elapsed:
            raise SlowClient(
                f"{self.bytes} bytes in {elapsed:.1f} s, under {self.min_rate:g} bytes/s"
            )
        return min(idle, left)
