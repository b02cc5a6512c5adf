"""Message bytes as received: in memory when small, in a spool file when large (#15, #17).

A front-end writes what the MTA sends into a `MessageWriter`. Up to
``SpoolConfig.threshold_bytes`` the bytes stay in memory; past it they go to a file in the
spool directory, and the engine reads them from there (chunked reads for hashing, an
``mmap`` for locating MIME boundaries) instead of holding copies of a 40 MB message.

Messages being received and scanned in memory share one budget per worker
(``memory_bytes``): past it, even a small message goes to the spool, so a few hundred
connections each sending a message just under the threshold cannot add up to gigabytes.

The spool file is unlinked the moment it is created: the open descriptor is its only
reference, so it disappears when the message is finished (``RawMessage.close``) and, were
the worker killed, when the kernel closes its descriptors. ``SpoolConfig.sweep`` (run when a
worker starts) removes names left by a crash in the instant between creating and unlinking.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

PREFIX = "tocsin-spool-"
CHUNK = 1024 * 1024  # reads from the spool, and the hashing/decoding step
HEADER_CAP = 8 * 1024 * 1024  # a spooled message's header block kept in memory, at most
_HEADER_END = re.compile(rb"\r?\n\r?\n")  # as milter.text.headers.split_message


class MemoryBudget:
    """Bytes of messages held in memory by one worker's writers and messages."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        """Count ``size`` more bytes if they fit; False (nothing counted) if not."""
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give_back(self, size: int) -> None:
        """Release ``size`` bytes counted before."""
        self.used = max(0, self.used - size)


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    """Where large messages go and from which size (settings ``spool:``); one per worker
    (its `MemoryBudget` is shared by every message of the worker)."""

    directory: Path | None = None  # None: the system's temporary directory
    threshold_bytes: int = 2 * 1024 * 1024
    memory_bytes: int = 64 * 1024 * 1024
    budget: MemoryBudget = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", MemoryBudget(self.memory_bytes))

    @property
    def path(self) -> Path:
        """The spool directory in use."""
        return self.directory if self.directory is not None else Path(tempfile.gettempdir())

    def writer(self, max_bytes: int | None = None) -> MessageWriter:
        """A writer for one message; past ``max_bytes`` bytes are counted, not kept."""
        return MessageWriter(self, max_bytes)

    def sweep(self) -> int:
        """Remove spool files left behind (a crash between creating and unlinking one)."""
        removed = 0
        with contextlib.suppress(OSError):
            for entry in self.path.glob(PREFIX + "*"):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed += 1
        return removed


class MessageWriter:
    """Collects one message's bytes: in memory up to the threshold, then in a spool file.

    ``write`` raises ``OSError`` when the spool cannot be written (disk full, no
    directory); the writer is then closed and the front-end tempfails the message.
    """

    def __init__(self, config: SpoolConfig, max_bytes: int | None) -> None:
        self._config = config
        self._max = max_bytes
        self._chunks: list[bytes] = []
        self._file: BinaryIO | None = None
        self._tail = b""
        self._in_memory = 0  # bytes counted in the worker's memory budget
        self.header_end: int | None = None
        self.stored = 0
        self.received = 0

    @property
    def spooled(self) -> bool:
        """True once the bytes went to a spool file."""
        return self._file is not None

    def write(self, data: bytes) -> None:
        """Append ``data``; what goes past ``max_bytes`` is only counted."""
        self.received += len(data)
        if self._max is not None and self.stored + len(data) > self._max:
            data = data[: max(0, self._max - self.stored)]
        if not data:
            return
        if self.header_end is None:
            self._find_header_end(data)
        if self._file is None and not self._keep_in_memory(len(data)):
            self._roll_over()
        if self._file is not None:
            try:
                self._file.write(data)
            except OSError:
                self.discard()
                raise
        else:
            self._chunks.append(data)
        self.stored += len(data)

    def _keep_in_memory(self, size: int) -> bool:
        """Under the threshold and within the worker's memory budget (counted if so)."""
        if self.stored + size > self._config.threshold_bytes:
            return False
        if not self._config.budget.take(size):
            return False
        self._in_memory += size
        return True

    def _find_header_end(self, data: bytes) -> None:
        window = self._tail + data
        match = _HEADER_END.search(window)
        if match is not None:
            self.header_end = self.stored - len(self._tail) + match.end()
        self._tail = window[-3:]

    def _roll_over(self) -> None:
        fd, name = tempfile.mkstemp(prefix=PREFIX, dir=self._config.path)
        with contextlib.suppress(OSError):
            os.unlink(name)  # the descriptor is now the only reference
        self._file = os.fdopen(fd, "w+b")
        self._config.budget.give_back(self._in_memory)
        self._in_memory = 0
        try:
            for chunk in self._chunks:
                self._file.write(chunk)
        except OSError:
            self.discard()
            raise
        self._chunks = []

    def finish(self) -> RawMessage:
        """The message written so far. The writer must not be used afterwards."""
        if self._file is not None:
            self._file.flush()
            store: bytes | BinaryIO = self._file
            self._file = None
        else:
            store = b"".join(self._chunks)
        self._chunks = []
        budget = self._config.budget if self._in_memory else None
        self._in_memory = 0  # the message gives it back when closed
        return RawMessage(
            store,
            self.stored,
            self.header_end,
            self.received,
            directory=self._config.path,
            budget=budget,
        )

    def discard(self) -> None:
        """Drop what was written (abort, failure): closes the spool file."""
        self._chunks = []
        self._config.budget.give_back(self._in_memory)
        self._in_memory = 0
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


class RawMessage:
    """One message's bytes, whole or cut, in memory or in a spool file.

    ``size`` bytes are readable; ``received`` is what the sender sent (more when the
    front-end kept only the first bytes, see ``truncated``). ``header_block`` (ending with
    its empty line, as ``split_message`` cuts it) is always in memory. The front-end that
    made the message closes it; `prefix` views share the storage and are not closed.
    """

    def __init__(
        self,
        store: bytes | BinaryIO,
        size: int | None = None,
        header_end: int | None = None,
        received: int | None = None,
        *,
        directory: Path | None = None,
        budget: MemoryBudget | None = None,
    ) -> None:
        self._store = store
        self._budget = budget  # gets this message's size back on close (in-memory ones)
        self.directory = directory  # where temporary files about this message may go
        self.size = len(store) if isinstance(store, bytes) and size is None else (size or 0)
        self.received = max(self.size, received or 0)
        if header_end is None and isinstance(store, bytes):
            match = _HEADER_END.search(store, 0, self.size)
            header_end = match.end() if match is not None else None
        self.body_offset = min(header_end, self.size) if header_end is not None else self.size
        self.header_block = self.read(0, min(self.body_offset, HEADER_CAP))

    @classmethod
    def from_bytes(cls, raw: bytes) -> RawMessage:
        """A message held in memory."""
        return cls(raw)

    @property
    def spooled(self) -> bool:
        """True when the bytes are in a spool file."""
        return not isinstance(self._store, bytes)

    @property
    def truncated(self) -> bool:
        """True when only the first ``size`` of ``received`` bytes are here."""
        return self.received > self.size

    @property
    def editable(self) -> bool:
        """Whether a new body may be built: the whole message is here (in memory or
        spooled; a spooled one is read back for the edit, and spooled scans run
        ``large_scans`` at a time, so such copies stay bounded per worker)."""
        return not self.truncated

    @property
    def body_size(self) -> int:
        """Bytes after the header block."""
        return self.size - self.body_offset

    def prefix(self, size: int) -> RawMessage:
        """The first ``size`` bytes (scan what fits); ``received`` is kept."""
        if size >= self.size:
            return self
        header_end = self.body_offset if self.body_offset < self.size else None
        return RawMessage(self._store, size, header_end, self.received, directory=self.directory)

    def counted(self, received: int) -> RawMessage:
        """This message, known to be the first bytes of ``received`` sent."""
        if received <= self.received:
            return self
        header_end = self.body_offset if self.body_offset < self.size else None
        return RawMessage(self._store, self.size, header_end, received, directory=self.directory)

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``start``..``end`` (clamped to ``size``)."""
        end = min(end, self.size)
        if start >= end:
            return b""
        if isinstance(self._store, bytes):
            if start == 0 and end == len(self._store):
                return self._store
            return self._store[start:end]
        return os.pread(self._store.fileno(), end - start, start)

    def chunks(self, start: int = 0, end: int | None = None, size: int = CHUNK) -> Iterator[bytes]:
        """Bytes ``start``..``end`` in pieces of at most ``size``."""
        stop = self.size if end is None else min(end, self.size)
        for offset in range(start, stop, size):
            yield self.read(offset, min(offset + size, stop))

    @contextlib.contextmanager
    def buffer(self) -> Iterator[bytes | mmap.mmap]:
        """The whole message without a copy: the bytes, or a read-only map of the spool
        file (its pages count towards the worker's memory while touched, once)."""
        if isinstance(self._store, bytes) or self.size == 0:
            yield self.read(0, self.size)
            return
        mapped = mmap.mmap(self._store.fileno(), self.size, access=mmap.ACCESS_READ)
        try:
            yield mapped
        finally:
            with contextlib.suppress(BufferError):  # a view still exported: freed with it
                mapped.close()

    def to_bytes(self) -> bytes:
        """The whole message in memory (a copy when spooled: for small consumers only)."""
        return self.read(0, self.size)

    def body(self) -> bytes:
        """The body in memory (a copy when spooled)."""
        return self.read(self.body_offset, self.size)

    def close(self) -> None:
        """Release the spool file (its space is freed) or the memory budget; idempotent."""
        if self._budget is not None:
            self._budget.give_back(self.size)
            self._budget = None
        if not isinstance(self._store, bytes):
            with contextlib.suppress(OSError):
                self._store.close()

    def __enter__(self) -> RawMessage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
