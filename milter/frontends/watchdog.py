"""Worker heartbeats: the supervisor kills a worker whose event loop stopped turning.

The engine's checks run on each worker's event loop. A scan that spends CPU where no
cooperative checkpoint reaches it (the stdlib MIME parser on deep nesting, a C regex)
blocks that loop, and every other connection of the worker with it; ``asyncio.timeout``
cannot interrupt it. So each worker bumps a counter in memory shared with its parent
(`Heartbeats`, one slot per worker) from a task on its loop; the parent, which runs no
scans, sees when a slot has not moved for ``worker_stall_seconds``, kills that worker
(SIGKILL: the runaway work stops, the worker answers nothing more) and starts another.
The MTA applies its default action to the connections cut (Postfix
``milter_default_action = tempfail``; an SMTP client treats a lost connection as a
temporary failure), so the mail waits and is retried: nothing is lost.

Why a separate process watches and not a thread of the worker: a thread needs the GIL,
and a long C call (a regular expression) holds it.
"""

from __future__ import annotations

import asyncio
import mmap
import struct

_SLOT = struct.Struct("Q")
UNARMED = 0


def beat_interval(stall_seconds: float) -> float:
    """How often a worker beats (and the supervisor looks): a few times per limit."""
    return max(0.01, min(1.0, stall_seconds / 4))


class Heartbeats:
    """Counters in anonymous shared memory, made before fork: one slot per worker.

    A slot holds 0 while its worker starts (not watched yet: loading the policy and
    warming up may take a while), then a counter the worker increments.
    """

    def __init__(self, slots: int) -> None:
        self._memory = mmap.mmap(-1, _SLOT.size * slots)  # MAP_SHARED: seen across fork
        self.slots = slots

    def read(self, slot: int) -> int:
        """The slot's counter (0: not armed)."""
        return int(_SLOT.unpack_from(self._memory, slot * _SLOT.size)[0])

    def write(self, slot: int, value: int) -> None:
        """Set the slot's counter."""
        _SLOT.pack_into(self._memory, slot * _SLOT.size, value)

    async def beat(self, slot: int, interval: float) -> None:
        """Run on a worker's event loop: bump ``slot`` every ``interval`` (until cancelled)."""
        count = max(self.read(slot), UNARMED) + 1
        while True:
            self.write(slot, count)
            count += 1
            await asyncio.sleep(interval)


class StallWatch:
    """The supervisor's side: when each slot last moved, by the supervisor's clock."""

    def __init__(self, heartbeats: Heartbeats, stall_seconds: float) -> None:
        self.heartbeats = heartbeats
        self.stall_seconds = stall_seconds
        self._seen: dict[int, tuple[int, float]] = {}

    def reset(self, slot: int) -> None:
        """A new worker takes ``slot``: not watched until it beats."""
        self.heartbeats.write(slot, UNARMED)
        self._seen.pop(slot, None)

    def stalled(self, slot: int, now: float) -> float | None:
        """Seconds since ``slot`` last moved when that is past the limit, else None."""
        value = self.heartbeats.read(slot)
        if value == UNARMED:
            return None
        last = self._seen.get(slot)
        if last is None or last[0] != value:
            self._seen[slot] = (value, now)
            return None
        still = now - last[1]
        return still if still > self.stall_seconds else None
