"""The SMTP DATA reader reads in blocks; it must answer exactly as the line-by-line one.

`reference` is the reader the filter used before (one ``readuntil`` per line), kept here
as the definition: Hypothesis feeds both the same bytes, cut into the same random reads,
and compares what reaches the spool writer, the refusal, and what is left unread for the
next command.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milter.frontends.smtp.data import LINE_TOO_LONG, SPOOL_FAILED, TOO_MUCH_DATA, read_dot_data
from milter.mime.spool import MessageWriter, SpoolConfig

LIMIT = 40  # the reader's limit: the longest line content read whole


async def reference(
    reader: asyncio.StreamReader, writer: MessageWriter, size_limit: int | None
) -> str | None:
    """The line-by-line reader (milter/frontends/smtp/protocol.py before session 5)."""
    problem: str | None = None
    size = 0
    line_start = True
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as exc:
            await reader.read(exc.consumed)
            problem = problem or LINE_TOO_LONG
            line_start = False
            continue
        if line_start and line == b".\r\n":
            return problem
        size += len(line)
        if problem is None and size_limit and size > size_limit:
            problem = TOO_MUCH_DATA
        if problem is None:
            if line_start and line.startswith(b"."):
                line = line[1:]
            try:
                writer.write(line)
            except OSError:
                problem = SPOOL_FAILED
        line_start = True


class _Writer:
    """Collects what would go to the spool (a `MessageWriter` in the filter)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.data = bytearray()
        self.fail_after = fail_after

    def write(self, data: bytes) -> None:
        if self.fail_after is not None and len(self.data) + len(data) > self.fail_after:
            raise OSError(28, "No space left on device")
        self.data += data


async def _run(
    read: object, chunks: list[bytes], size_limit: int | None, fail_after: int | None
) -> tuple[bytes, str | None, bytes]:
    reader = asyncio.StreamReader(limit=LIMIT)
    writer = _Writer(fail_after)

    async def feed() -> None:
        for chunk in chunks:
            reader.feed_data(chunk)
            await asyncio.sleep(0)
        reader.feed_data(b"QUIT\r\n")
        reader.feed_eof()

    feeder = asyncio.create_task(feed())
    if read is reference:
        problem = await reference(reader, writer, size_limit)  # type: ignore[arg-type]
    else:
        problem = await read_dot_data(
            reader,
            writer,  # type: ignore[arg-type]
            line_limit=LIMIT,
            size_limit=size_limit,
        )
    await feeder
    rest = await reader.read()
    return bytes(writer.data), problem, rest


line = st.one_of(
    st.sampled_from([b".", b"..", b"", b"\r", b"\n", b".\r", b". ", b"\n.", b"x" * 45]),
    st.binary(max_size=50),
).map(lambda b: b.replace(b"\r\n", b"\n"))


@st.composite
def transmissions(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A DATA section (lines, the lone dot) and the reads it arrives in."""
    lines = draw(st.lists(line, max_size=12))
    body = b"".join(part + b"\r\n" for part in lines)
    wire = body + b".\r\n"
    cuts = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    return wire, [c for c in chunks if c]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    transmissions(),
    st.one_of(st.none(), st.integers(1, 400)),
    st.one_of(st.none(), st.integers(0, 300)),
)
def test_block_reader_answers_as_the_line_reader(
    sent: tuple[bytes, list[bytes]], size_limit: int | None, fail_after: int | None
) -> None:
    _, chunks = sent
    want = asyncio.run(_run(reference, chunks, size_limit, fail_after))
    got = asyncio.run(_run(read_dot_data, chunks, size_limit, fail_after))
    assert got[1:] == want[1:]  # the same refusal (or none), the same bytes left unread
    if want[1] is None:
        assert got[0] == want[0]  # the same message (with a refusal the spool is discarded)


@pytest.mark.parametrize(
    ("wire", "kept", "rest"),
    [
        (b".\r\n", b"", b""),
        (b"\r\n.\r\n", b"\r\n", b""),
        (b"..\r\n.\r\n", b".\r\n", b""),
        (b"a\r\n..b\r\n.\r\n", b"a\r\n.b\r\n", b""),
        (b"a\r\n.\r\nRSET\r\n", b"a\r\n", b"RSET\r\n"),  # the next command stays unread
    ],
)
def test_dot_lines(wire: bytes, kept: bytes, rest: bytes) -> None:
    got = asyncio.run(_run(read_dot_data, [wire], None, None))
    assert got == (kept, None, rest + b"QUIT\r\n")


def test_a_large_message_in_few_reads(tmp_path: object) -> None:
    """A 2 MB body read through a real spool writer, cut into 64 KiB reads, comes out
    unstuffed and whole."""
    body = b"".join(b".line %d with a dot\r\n" % i for i in range(80_000))

    async def main() -> bytes:
        reader = asyncio.StreamReader(limit=1024 * 1024)
        wire = body + b".\r\n"
        for i in range(0, len(wire), 65536):
            reader.feed_data(wire[i : i + 65536])
        writer = MessageWriter(SpoolConfig(), None)
        problem = await read_dot_data(reader, writer, line_limit=1024 * 1024, size_limit=None)
        assert problem is None
        with writer.finish() as message:
            return message.to_bytes()

    assert asyncio.run(main()) == body.replace(b"\r\n.", b"\r\n")[1:]
