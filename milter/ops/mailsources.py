"""Messages to replay, read in place from files, folders, mbox files and Maildirs.

The standard library's ``mailbox`` reads mbox and Maildir; this module only decides which
a path is and walks folders. A file named on the command line is always read as mail; a
file found while walking a folder is read only when it starts like a message (a header
block or an mbox ``From `` line), so README files and word lists beside a corpus are skipped.
"""

from __future__ import annotations

import mailbox
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAILDIR_PARTS = ("cur", "new", "tmp")
_HEADER = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_SNIFF_BYTES = 16 * 1024
MAX_HEADER_LINES = 500


@dataclass(frozen=True, slots=True)
class MailItem:
    """One message (``raw``), or why it could not be read (``error``)."""

    label: str
    raw: bytes = b""
    error: str | None = None


def is_maildir(path: Path) -> bool:
    """A folder with cur/, new/ and tmp/."""
    return all((path / part).is_dir() for part in MAILDIR_PARTS)


def looks_like_mbox(head: bytes) -> bool:
    """mbox files start with a ``From `` separator line."""
    return head.startswith(b"From ")


def looks_like_message(head: bytes) -> bool:
    """The text starts with a header block: header fields and folded lines up to a blank
    line (or the end of what was read)."""
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    if not lines or not _HEADER.match(lines[0]):
        return False
    for line in lines[:MAX_HEADER_LINES]:
        if not line:
            return True
        if not (line[:1] in (b" ", b"\t") or _HEADER.match(line)):
            return False
    return len(lines) <= MAX_HEADER_LINES


def iter_messages(paths: list[Path]) -> Iterator[MailItem]:
    """Every message under ``paths``, in a stable order (folders sorted by name)."""
    for path in paths:
        if path.is_dir():
            yield from _folder(path)
        else:
            yield from _file(path, explicit=True)


def _folder(folder: Path) -> Iterator[MailItem]:
    if is_maildir(folder):
        yield from _maildir(folder)
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield MailItem(str(folder), error=exc.strerror or str(exc))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        child = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _folder(child)
        elif entry.is_file():
            yield from _file(child, explicit=False)


def _file(path: Path, *, explicit: bool) -> Iterator[MailItem]:
    try:
        with path.open("rb") as stream:
            head = stream.read(_SNIFF_BYTES)
    except OSError as exc:
        yield MailItem(str(path), error=exc.strerror or str(exc))
        return
    if looks_like_mbox(head):
        yield from _mbox(path)
    elif explicit or looks_like_message(head):
        try:
            yield MailItem(str(path), path.read_bytes())
        except OSError as exc:
            yield MailItem(str(path), error=exc.strerror or str(exc))


def _mbox(path: Path) -> Iterator[MailItem]:
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield MailItem(f"{path}:{number}", box.get_bytes(key))
    except OSError as exc:
        yield MailItem(str(path), error=exc.strerror or str(exc))
    finally:
        box.close()


def _maildir(folder: Path) -> Iterator[MailItem]:
    box = mailbox.Maildir(folder, factory=None, create=False)
    try:
        keys = sorted(box.iterkeys())
    except OSError as exc:
        yield MailItem(str(folder), error=exc.strerror or str(exc))
        return
    for key in keys:
        try:
            yield MailItem(f"{folder}/{key}", box.get_bytes(key))
        except (OSError, KeyError) as exc:  # KeyError: the file went away meanwhile
            yield MailItem(f"{folder}/{key}", error=str(exc))
