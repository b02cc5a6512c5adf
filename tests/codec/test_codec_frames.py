"""Framing: length prefix, bounds, incremental buffering, end of stream."""

from __future__ import annotations

import pytest

from milter.codec import LocalProtocolError, RemoteProtocolError
from milter.codec.frames import DEFAULT_MAX_FRAME_SIZE, Frame, FrameBuffer, encode_frame
from tests.codec.codec_helpers import packet


def frames_of(buffer: FrameBuffer) -> list[Frame]:
    out: list[Frame] = []
    while (frame := buffer.next_frame()) is not None:
        out.append(frame)
    return out


@pytest.mark.parametrize(
    ("code", "payload", "wire"),
    [
        (b"c", b"", b"\x00\x00\x00\x01c"),
        (b"L", b"Subject\x00hi\x00", b"\x00\x00\x00\x0cLSubject\x00hi\x00"),
        (b"B", b"x" * 300, b"\x00\x00\x01\x2dB" + b"x" * 300),
    ],
)
def test_encode_frame_layout(code: bytes, payload: bytes, wire: bytes) -> None:
    assert encode_frame(code, payload) == wire
    assert packet(code, payload) == wire


def test_encode_frame_rejects_multibyte_code() -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(b"cc")


def test_frames_whole_bytewise_and_trailing() -> None:
    data = packet(b"O", b"\x00" * 12) + packet(b"D", b"Cj\x00mx\x00") + packet(b"Q")
    expected = [Frame(b"O", b"\x00" * 12), Frame(b"D", b"Cj\x00mx\x00"), Frame(b"Q", b"")]
    whole = FrameBuffer()
    whole.feed(data)
    assert frames_of(whole) == expected

    bytewise = FrameBuffer()
    got: list[Frame] = []
    for byte in data:
        bytewise.feed(bytes([byte]))
        got.extend(frames_of(bytewise))
    assert got == expected

    trailing = FrameBuffer()
    trailing.feed(data + b"\x00\x00")
    assert frames_of(trailing) == expected
    assert len(trailing) == 2


def test_zero_length_is_rejected() -> None:
    buffer = FrameBuffer()
    buffer.feed(b"\x00\x00\x00\x00")
    with pytest.raises(RemoteProtocolError, match="length 0"):
        buffer.next_frame()


def test_oversized_frame_rejected_before_payload_arrives() -> None:
    buffer = FrameBuffer(max_frame_size=1000)
    buffer.feed((1001).to_bytes(4, "big"))
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        buffer.next_frame()


def test_frame_at_the_limit_is_accepted() -> None:
    buffer = FrameBuffer(max_frame_size=1000)
    buffer.feed(packet(b"B", b"x" * 999))
    assert buffer.next_frame() == Frame(b"B", b"x" * 999)


def test_default_limit_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_FRAME_SIZE == 1024 * 1024
    buffer = FrameBuffer()
    buffer.feed((DEFAULT_MAX_FRAME_SIZE + 1).to_bytes(4, "big"))
    with pytest.raises(RemoteProtocolError):
        buffer.next_frame()


def test_tiny_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        FrameBuffer(max_frame_size=4)


def test_clean_eof_yields_nothing() -> None:
    buffer = FrameBuffer()
    buffer.feed(packet(b"Q"))
    buffer.feed(b"")
    assert buffer.eof
    assert frames_of(buffer) == [Frame(b"Q", b"")]


@pytest.mark.parametrize("partial", [b"\x00", b"\x00\x00\x00\x05Lab"])
def test_eof_inside_a_packet_is_remote_error(partial: bytes) -> None:
    buffer = FrameBuffer()
    buffer.feed(partial)
    assert buffer.next_frame() is None
    buffer.feed(b"")
    with pytest.raises(RemoteProtocolError, match="closed inside"):
        buffer.next_frame()


def test_feeding_after_eof_is_local_error() -> None:
    buffer = FrameBuffer()
    buffer.feed(b"")
    with pytest.raises(LocalProtocolError):
        buffer.feed(b"x")


def test_a_packet_split_across_reads_comes_out_as_bytes_and_the_buffer_still_grows() -> None:
    first = packet(b"B", b"x" * 1000)
    second = packet(b"B", b"y" * 500)
    buffer = FrameBuffer()
    buffer.feed(first[:300])  # kept as it came
    buffer.feed(first[300:] + second[:10])  # now a bytearray
    code, payload = buffer.next_packet() or (b"", b"")
    assert (code, payload) == (b"B", b"x" * 1000)
    assert type(code) is bytes
    assert type(payload) is bytes
    buffer.feed(second[10:])  # no view of the buffer left behind to stop it growing
    assert buffer.next_packet() == (b"B", b"y" * 500)
    assert buffer.next_packet() is None
