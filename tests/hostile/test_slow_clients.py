"""#17 slow-loris: clients that trickle a message a byte at a time cannot hold the
milter's connections. Each in-message connection has a total time budget and a minimum
data rate; past either it gets a 4xx reply and is closed, so a normal client is served.

The test sets a tight budget and asserts the outcomes (every slow client got a 4xx or a
close, the normal client got its verdict); it measures no time itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from milter.codec import Header, MailFrom, Rcpt
from milter.codec.mta import encode_command
from milter.frontends.pace import Pace, SlowClient
from tests.support.milter_client import MilterClient, MilterClosed, one_message

Start = Callable[..., Any]
HAM = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hello\r\n\r\nHello.\r\n"


async def _slow_client(milter: Any) -> bytes:
    """Starts a message, then sends one header frame a byte at a time; returns what the
    milter answered before closing (the 4xx reply), or b"" when it just closed."""
    client: MilterClient = await milter.client()
    received = b""
    client.send_raw(encode_command(MailFrom("<slow@example.org>")))
    client.send_raw(encode_command(Rcpt("<b@example.net>")))
    frame = encode_command(Header("Subject", " a slow one"))
    with contextlib.suppress(ConnectionError, OSError):
        for byte in frame * 50:
            client.send_raw(bytes([byte]))
            await client._writer.drain()
            await asyncio.sleep(0.05)
            if client._reader.at_eof():
                break
    with contextlib.suppress(ConnectionError, OSError, TimeoutError):
        while chunk := await asyncio.wait_for(client.read_raw(), 5):
            received += chunk
    with contextlib.suppress(Exception):
        await client.quit()
    return received


async def test_slow_clients_are_cut_and_a_normal_client_is_served(
    start_milter: Start, caplog: pytest.LogCaptureFixture
) -> None:
    async with start_milter(
        max_connections=8,
        message_seconds=1.0,
        min_bytes_per_second=200,
        slow_grace_seconds=0.3,
    ) as milter:
        slow = [asyncio.create_task(_slow_client(milter)) for _ in range(8)]
        await asyncio.sleep(0.2)  # the slow clients hold every connection now
        outcome = None
        for _ in range(100):  # refused while full: retry, as an MTA does
            try:
                outcome = await one_message(milter.port, HAM)
                break
            except (MilterClosed, ConnectionError, asyncio.IncompleteReadError, OSError):
                await asyncio.sleep(0.1)
        answers = await asyncio.gather(*slow)
    assert outcome is not None, "the normal client was never served"
    assert type(outcome.final).__name__ == "Accept"
    cut = [r.getMessage() for r in caplog.records if "slow client" in r.getMessage()]
    assert len(cut) == len(answers) == 8  # every slow client was cut, none left open
    # a 4xx reply frame was written before closing, unless the socket was already reset
    assert all(b"4.7.1" in a or a == b"" for a in answers), answers


def test_pace_budget_and_minimum_rate() -> None:
    pace = Pace(budget=10, min_rate=100, grace=2)
    pace.start(0.0)
    pace.received(50)
    assert pace.read_timeout(600, 1.0) == 9  # within the grace: only the budget bounds it
    with pytest.raises(SlowClient, match="bytes/s"):
        pace.read_timeout(600, 3.0)  # 50 bytes in 3 s, under 100 bytes/s
    pace.received(1000)
    assert pace.read_timeout(5, 3.0) == 5
    with pytest.raises(SlowClient, match="not complete"):
        pace.read_timeout(600, 10.5)
