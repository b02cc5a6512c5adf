"""Message bytes in memory while small, in an unlinked spool file past the threshold."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milter.mime.headers import split_message
from milter.mime.spool import PREFIX, RawMessage, SpoolConfig
from tests.support.fds import open_files_under

MESSAGE = b"From: a@example.org\r\nSubject: s\r\n\r\n" + b"line of body text\r\n" * 200


def _write(
    config: SpoolConfig, data: bytes, cuts: list[int], max_bytes: int | None = None
) -> RawMessage:
    writer = config.writer(max_bytes)
    points = sorted({min(c, len(data)) for c in cuts})
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        writer.write(data[start:end])
    return writer.finish()


def test_small_message_stays_in_memory(tmp_path: Path) -> None:
    message = _write(SpoolConfig(tmp_path, threshold_bytes=len(MESSAGE)), MESSAGE, [100])
    assert not message.spooled
    assert message.to_bytes() == MESSAGE
    assert open_files_under(tmp_path) == []


def test_large_message_is_spooled_unlinked_and_released_on_close(tmp_path: Path) -> None:
    message = _write(SpoolConfig(tmp_path, threshold_bytes=1024), MESSAGE, [10, 2000])
    assert message.spooled
    assert list(tmp_path.iterdir()) == []  # unlinked at once: a killed worker leaks nothing
    assert len(open_files_under(tmp_path)) == 1
    assert message.to_bytes() == MESSAGE
    assert b"".join(message.chunks(size=333)) == MESSAGE
    with message.buffer() as buffer:
        assert buffer[:5] == b"From:"
        assert len(buffer) == len(MESSAGE)
    message.close()
    assert open_files_under(tmp_path) == []


def test_discarded_writer_releases_its_file(tmp_path: Path) -> None:
    writer = SpoolConfig(tmp_path, threshold_bytes=1024).writer()
    writer.write(MESSAGE)
    assert writer.spooled
    assert open_files_under(tmp_path)
    writer.discard()
    assert open_files_under(tmp_path) == []


def test_past_max_bytes_the_first_bytes_are_kept_and_the_rest_counted(tmp_path: Path) -> None:
    message = _write(SpoolConfig(tmp_path, threshold_bytes=1024), MESSAGE, [50, 3000], 2048)
    assert (message.size, message.received) == (2048, len(MESSAGE))
    assert message.truncated
    assert not message.editable
    assert message.to_bytes() == MESSAGE[:2048]
    cut = message.prefix(100)
    assert (cut.to_bytes(), cut.received) == (MESSAGE[:100], len(MESSAGE))
    message.close()


def test_unwritable_spool_directory_raises_and_keeps_nothing(tmp_path: Path) -> None:
    writer = SpoolConfig(tmp_path / "missing", threshold_bytes=1024).writer()
    with pytest.raises(FileNotFoundError):
        writer.write(MESSAGE)


def test_sweep_removes_names_left_by_a_crash(tmp_path: Path) -> None:
    (tmp_path / f"{PREFIX}abc").write_bytes(b"x")
    (tmp_path / "someone-else").write_bytes(b"y")
    assert SpoolConfig(tmp_path).sweep() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["someone-else"]


PIECES = [b"a", b":", b" ", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\n\n", b"x: y"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join),
    st.lists(st.integers(0, 80), max_size=5),
    st.integers(0, 40),
)
def test_header_block_is_split_messages_whatever_the_chunks(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, cuts: list[int], threshold: int
) -> None:
    directory = tmp_path_factory.mktemp("spool", numbered=True)
    message = _write(SpoolConfig(directory, threshold_bytes=threshold), data, cuts)
    block, body = split_message(data)
    assert message.header_block == block
    assert message.body() == body
    assert RawMessage.from_bytes(data).header_block == block
    message.close()


def test_the_workers_memory_budget_sends_small_messages_to_the_spool(tmp_path: Path) -> None:
    """Messages under the threshold share one budget: past it, new ones are spooled; a
    closed or discarded message gives its bytes back."""
    config = SpoolConfig(tmp_path, threshold_bytes=len(MESSAGE), memory_bytes=2 * len(MESSAGE))
    first, second = (_write(config, MESSAGE, [7]) for _ in range(2))
    assert not first.spooled
    assert not second.spooled
    assert config.budget.used == 2 * len(MESSAGE)
    third = _write(config, MESSAGE, [7])
    assert third.spooled  # over the budget, though under the threshold
    assert third.to_bytes() == MESSAGE
    first.close()
    aborted = config.writer()
    aborted.write(MESSAGE)
    assert not aborted.spooled
    aborted.discard()
    fourth = _write(config, MESSAGE, [])
    assert not fourth.spooled
    for message in (second, third, fourth):
        message.close()
    assert config.budget.used == 0
