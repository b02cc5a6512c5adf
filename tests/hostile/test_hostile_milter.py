"""#17 rows that need the milter front-end: header floods and a 5 MB header line.

A real MilterServer on loopback, driven by the Postfix-like test client; every server
and client is closed by the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from milter.codec import Discard, ReplyCode, TempFail
from tests.hostile import shapes

Start = Callable[..., Any]


@pytest.mark.parametrize("count", [1001, 10_000])
async def test_header_flood_through_the_milter_is_scanned(start_milter: Start, count: int) -> None:
    """Was: accepted unscanned with a verdict header. Now: quarantined, limit recorded."""
    async with start_milter() as milter:
        client = await milter.client()
        outcome = await client.message(shapes.header_flood(count))
        await client.quit()
        records = milter.store.list()
    assert outcome.final == Discard()  # stored in Tocsin's quarantine
    assert len(records) == 1
    verdict = records[0].verdict
    assert verdict["verdict"] == "quarantine"
    codes = {f["code"]: f for f in verdict["findings"]}
    assert codes["LIMIT_EXCEEDED"]["evidence"]["limit"] == "headers"


async def test_a_5mb_header_line_gets_a_tempfail_not_a_reset(start_milter: Start) -> None:
    async with start_milter() as milter:
        client = await milter.client()
        outcome = await client.message(shapes.long_header_line(5_000_000))
        await client.quit()
    final = outcome.final
    assert isinstance(final, ReplyCode | TempFail), final
    if isinstance(final, ReplyCode):
        assert 400 <= final.code < 500
