"""The audit trail's durable copy: one JSON object per line in ``DIR/audit.log``.

Each entry is appended with ``O_APPEND`` (one ``write`` per line, so lines from several
processes never interleave) and fsynced before the action is reported done. The SQLite
index keeps a queryable copy; when the index is rebuilt, the trail is re-read from here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from milter.quarantine.backend import AuditEntry
from milter.quarantine.errors import QuarantineError
from milter.quarantine.fsio import write_all

_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def entry_line(entry: AuditEntry) -> bytes:
    """The JSON line of ``entry`` (UTF-8, newline-terminated)."""
    data = {
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "qid": entry.qid,
        "result": entry.result,
        "detail": entry.detail,
        "extra": dict(entry.extra),
    }
    return json.dumps(data, ensure_ascii=False, default=str).encode("utf-8", "replace") + b"\n"


def append(path: Path, entry: AuditEntry, owner: tuple[int, int] | None = None) -> None:
    """Append ``entry`` to ``path`` durably (created 0600 when missing)."""
    try:
        fd = os.open(path, _APPEND, 0o600)
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            write_all(fd, entry_line(entry))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise QuarantineError(f"cannot append to the audit trail {path}: {exc}") from None


def read(path: Path) -> Iterator[AuditEntry]:
    """Every well-formed entry of ``path`` in order (a torn last line is skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise QuarantineError(f"cannot read the audit trail {path}: {exc}") from None
    for line in data.splitlines():
        try:
            item = json.loads(line)
            yield AuditEntry(
                at=datetime.fromisoformat(item["at"]),
                actor=str(item["actor"]),
                action=item["action"],
                qid=item.get("qid"),
                result=str(item["result"]),
                detail=str(item.get("detail", "")),
                extra=dict(item.get("extra") or {}),
            )
        except (ValueError, KeyError, TypeError):
            continue
