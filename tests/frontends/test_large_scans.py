"""Large messages are scanned one at a time per worker; small ones are not held back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from milter.engine import scan as real_scan
from milter.frontends import service as service_module
from milter.frontends.service import LARGE_MESSAGE_BYTES, MessageRequest, MessageService
from milter.model.envelope import Envelope
from milter.policy.loader import load_policy
from milter.policy.store import PolicyStore

SMALL = b"From: a@example.org\r\nSubject: petit\r\n\r\nBonjour\r\n"
LARGE = SMALL + b"x" * LARGE_MESSAGE_BYTES


@pytest.mark.parametrize(("raw", "expected_peak"), [(LARGE, 1), (SMALL, 3)])
async def test_concurrent_scans(
    monkeypatch: pytest.MonkeyPatch, raw: bytes, expected_peak: int
) -> None:
    running = peak = 0

    async def slow_scan(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)  # a DNS wait inside the scan: another task may start
        running -= 1
        return await real_scan(SMALL, Envelope(), load_policy(None))

    monkeypatch.setattr(service_module, "scan", slow_scan)
    service = MessageService(PolicyStore(None, load_policy(None)))
    request = MessageRequest(raw, Envelope(rcpts=("a@x.test",)), len(raw))
    outcomes = await asyncio.gather(*(service.handle(request) for _ in range(3)))
    assert peak == expected_peak
    assert all(o.verdict is not None for o in outcomes)
