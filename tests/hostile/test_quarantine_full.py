"""#17 fault: the quarantine's disk is full. A message to quarantine then gets a 4xx (the
MTA keeps it and retries), nothing half-written is listed by ``tocsin quarantine list``,
no temporary file is left behind, and once there is room the retry is stored.

A real small filesystem: a tmpfs of a few hundred KiB mounted for the test (CI runs as
root on Debian 12). The test skips, saying why, only where mounting is not permitted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from milter.codec import Discard, ReplyCode
from milter.frontends.service import MessageService
from milter.policy.loader import load_policy
from milter.policy.store import PolicyStore
from milter.quarantine.store import QuarantineStore
from tests.support.cli import run_tocsin
from tests.support.milter_client import one_message

Start = Callable[..., Any]
LURE = (Path(__file__).resolve().parents[2] / "docs" / "examples" / "cpf-lure.eml").read_bytes()
LURE = LURE.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 384 KiB tmpfs, unmounted at the end whatever happens."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the suite as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=384k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _padded(raw: bytes, size: int) -> bytes:
    """The lure with ``size`` bytes of plain text lines appended to its body."""
    return raw + (b"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n" * (size // 58))


def _listed(directory: Path) -> list[dict[str, Any]]:
    done = run_tocsin("quarantine", "list", "--dir", str(directory), "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


async def test_quarantine_disk_full_tempfails_and_lists_nothing_half_written(
    start_milter: Start, small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = small_fs / "quarantine"
    service = MessageService(
        PolicyStore(None, load_policy(None)), quarantine=QuarantineStore(directory)
    )
    async with start_milter(handler=service) as milter:
        stored = await one_message(milter.port, LURE)
        assert stored.final == Discard()  # room for a small one: stored, then dropped
        too_big = _padded(LURE, 600_000)  # more than the filesystem holds
        full = await one_message(milter.port, too_big)
        assert isinstance(full.final, ReplyCode)
        assert full.final.code // 100 == 4  # tempfail: the MTA keeps the message
        listed = await asyncio.to_thread(_listed, directory)
        assert len(listed) == 1  # only the complete first record
        assert list(directory.rglob("*.tmp")) == []  # the failed write cleaned up
        failures = [
            r.getMessage() for r in caplog.records if "quarantine store failed" in r.getMessage()
        ]
        assert len(failures) == 1
        assert "No space left on device" in failures[0]
        remount = ["mount", "-o", "remount,size=4m", str(small_fs)]
        await asyncio.to_thread(subprocess.run, remount, check=True)
        retried = await one_message(milter.port, too_big)  # the MTA's retry, with room now
        assert retried.final == Discard()
    assert len(_listed(directory)) == 2
    sizes = sorted(item["size"] for item in _listed(directory))
    assert sizes[1] > 600_000  # the whole message was kept
