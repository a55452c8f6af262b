"""The WebSocket frame tracker (pure logic): boundaries across reads, 7/16/64-bit lengths."""

from __future__ import annotations

import struct

import pytest

from haloy.proxy.wsframes import FrameTracker, close_frame, header_size, payload_length


def frame(payload: bytes, opcode: int = 0x1, masked: bool = True, fin: bool = True) -> bytes:
    """One frame as a client (masked) or server (unmasked) would send it."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    mask = 0x80 if masked else 0
    if n < 126:
        head = bytes((b0, mask | n))
    elif n < 1 << 16:
        head = bytes((b0, mask | 126)) + struct.pack("!H", n)
    else:
        head = bytes((b0, mask | 127)) + struct.pack("!Q", n)
    if masked:
        key = b"\x01\x02\x03\x04"
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("masked", [True, False])
def test_one_frame_whole(size: int, masked: bool) -> None:
    t = FrameTracker()
    data = frame(b"x" * size, masked=masked)
    assert t.feed(data) == len(data)
    assert t.at_boundary and t.frames == 1


@pytest.mark.parametrize("size", SIZES)
def test_one_frame_byte_by_byte(size: int) -> None:
    t = FrameTracker()
    data = frame(b"y" * size)
    boundaries = []
    for i in range(len(data)):
        t.feed(data[i : i + 1])
        boundaries.append(t.at_boundary)
    # Only the last byte completes the frame: no boundary inside the header or payload.
    assert boundaries == [False] * (len(data) - 1) + [True]
    assert t.frames == 1


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5, 7, 9, 11, 13])
def test_64_bit_header_split_at_every_offset(cut: int) -> None:
    t = FrameTracker()
    data = frame(b"z" * 70000)
    t.feed(data[:cut])
    assert not t.at_boundary
    t.feed(data[cut:])
    assert t.at_boundary and t.frames == 1


def test_many_frames_in_one_read_and_a_fragmented_message() -> None:
    t = FrameTracker()
    data = (frame(b"a" * 200, fin=False) + frame(b"b" * 3, opcode=0x0, fin=False)
            + frame(b"", opcode=0x9) + frame(b"c" * 70000, opcode=0x0))
    assert t.feed(data) == len(data)
    assert t.at_boundary and t.frames == 4


def test_stop_at_boundary_returns_the_offset_of_the_next_boundary() -> None:
    first, second = frame(b"1" * 300), frame(b"2" * 10)
    t = FrameTracker()
    t.feed(first[:5])
    n = t.feed(first[5:] + second, stop_at_boundary=True)
    assert n == len(first) - 5 and t.at_boundary
    assert FrameTracker().feed(second, stop_at_boundary=True) == 0  # already at a boundary


def test_header_helpers() -> None:
    assert header_size(b"") == 2
    assert header_size(b"\x81\x05") == 2
    assert header_size(b"\x81\x85") == 6
    assert header_size(b"\x81\xfe") == 8
    assert header_size(b"\x81\xff") == 14
    assert payload_length(b"\x81\x7e\x01\x00") == 256
    assert payload_length(b"\x81\x7f" + struct.pack("!Q", 1 << 40)) == 1 << 40


def test_close_frame_masked_and_unmasked() -> None:
    plain = close_frame(1001, masked=False)
    assert plain == b"\x88\x02\x03\xe9"
    masked = close_frame(1001)
    assert masked[0] == 0x88 and masked[1] == 0x82
    key, body = masked[2:6], masked[6:]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(body)) == b"\x03\xe9"
    t = FrameTracker()
    assert t.feed(masked) == len(masked) and t.frames == 1
