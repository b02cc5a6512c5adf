"""Durable file primitives: write fully, fsync, publish without overwriting, fsync dirs.

Every function works on ``os`` file descriptors so that failures (ENOSPC, EIO, EACCES)
surface as ``OSError`` at the exact step that failed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write less)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_synced(
    path: Path, data: bytes, mode: int = 0o600, owner: tuple[int, int] | None = None
) -> None:
    """Create ``path`` (must not exist), write ``data``, fsync it.

    ``owner`` (uid, gid) is applied first when given (root writing into a store that
    belongs to the service user). On failure the partial file is removed.
    """
    fd = os.open(path, _CREATE, mode)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(path)
        raise
    os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a directory so that entries created, renamed or removed in it persist."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    """Remove ``path`` if it exists; errors are ignored (used on cleanup paths)."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def service_owner(path: Path) -> tuple[int, int] | None:
    """The (uid, gid) files written in ``path`` should get: its owner's, when we are
    root and it is not root's; else None (files keep our own identity)."""
    if os.geteuid() != 0:
        return None
    info = os.stat(path)
    return (info.st_uid, info.st_gid) if info.st_uid != 0 else None


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with mode 0700 when missing."""
    if path.is_dir():
        return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
