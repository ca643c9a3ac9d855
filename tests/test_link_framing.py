"""Firmware framing (firmware/core/link.py) under CPython, and against the independent host codec."""

from __future__ import annotations

from core import link
from hypothesis import given
from hypothesis import strategies as st

from host_tools import framing

bodies = st.binary(min_size=0, max_size=link.MAX_PAYLOAD - link.HEADER_LEN)
ids = st.integers(min_value=0, max_value=0xFFFF)


def head(kind: int, req_id: int) -> bytes:
    return bytes((1, kind, req_id >> 8, req_id & 0xFF))


def feed_all(d: link.Deframer, data: bytes, piece: int = 1) -> list[tuple[int, bytes]]:
    """Feed data as the link delivers it, `piece` bytes a read (a byte a read by default)."""
    out = []
    for at in range(0, len(data), piece):
        i, end = at, min(at + piece, len(data))
        while i < end:
            r = d.feed_from(data, i, end)
            i = d.used
            if r != link.NOTHING:
                out.append((r, bytes(d.payload[:d.length]) if r == link.FRAME else b""))
    return out


def test_crc_check_value():
    assert link.crc16(b"123456789", 9) == 0x29B1
    assert framing.crc16(b"123456789") == 0x29B1


@given(bodies, ids)
def test_firmware_and_host_encoders_agree_byte_for_byte(body, req_id):
    fw = bytes(link.encode(link.KIND_REQUEST, req_id, body))
    host = framing.encode(framing.REQUEST, req_id, body)
    assert host == b"\x00" + fw
    assert 0 not in fw[:-1] and fw[-1] == 0


@given(bodies, ids, st.binary(max_size=50))
def test_encoding_into_a_used_buffer_gives_the_same_frame(body, req_id, junk):
    """The device writes answers into its deframer's buffer, over whatever was there."""
    d = link.Deframer()
    d.payload[:len(junk)] = junk
    assert bytes(link.encode(link.KIND_RESPONSE, req_id, body, d.payload)) == bytes(link.encode(link.KIND_RESPONSE, req_id, body))


@given(bodies.map(lambda b: b.replace(b"\0", b"x")), ids)
def test_text_bodies_skip_the_zero_search_and_give_the_same_frame(body, req_id):
    """The device's answers are JSON text (no 0x00): encode's text path frames them alike."""
    assert bytes(link.encode(link.KIND_RESPONSE, req_id, body, None, True)) == bytes(link.encode(link.KIND_RESPONSE, req_id, body))


@given(bodies, ids, st.sampled_from([1, 2, 7, 64, 5000]))
def test_firmware_deframer_decodes_host_frames(body, req_id, piece):
    d = link.Deframer()
    got = feed_all(d, framing.encode(framing.REQUEST, req_id, body), piece)
    assert got == [(link.FRAME, head(link.KIND_REQUEST, req_id) + body)]


@given(bodies, ids)
def test_host_decodes_firmware_frames(body, req_id):
    wire = bytes(link.encode(link.KIND_RESPONSE, req_id, body))
    f = framing.decode(wire[:-1])
    assert (f.version, f.kind, f.req_id, f.body) == (1, framing.RESPONSE, req_id, body)


@given(st.binary(max_size=300), bodies, ids)
def test_resynchronises_after_any_garbage(garbage, body, req_id):
    """Whatever came before, the frame after the next delimiter is received intact."""
    d = link.Deframer()
    results = feed_all(d, garbage + framing.encode(framing.REQUEST, req_id, body))
    assert results[-1] == (link.FRAME, head(link.KIND_REQUEST, req_id) + body)


@given(bodies, ids, st.data())
def test_any_single_byte_corruption_is_detected(body, req_id, data):
    wire = bytearray(link.encode(link.KIND_REQUEST, req_id, body))
    i = data.draw(st.integers(min_value=0, max_value=len(wire) - 2))
    wire[i] ^= data.draw(st.integers(min_value=1, max_value=255))
    results = feed_all(link.Deframer(), bytes(wire))
    # a corrupted byte may become 0x00 and split the frame, but nothing passes as a good frame
    assert results and all(r != link.FRAME for r, _ in results)


def test_truncated_frame_is_refused():
    wire = bytes(link.encode(link.KIND_REQUEST, 5, b'{"cmd":"status"}'))
    for cut in range(1, len(wire) - 1):
        (result,) = feed_all(link.Deframer(), wire[:cut] + b"\x00")
        assert result[0] in (link.BAD_COBS, link.BAD_CRC, link.TOO_SHORT), cut


def test_short_frame_is_refused():
    assert feed_all(link.Deframer(), b"\x02\x01\x00") == [(link.TOO_SHORT, b"")]


def test_invalid_cobs_is_refused():
    assert feed_all(link.Deframer(), b"\x09\x01\x02\x00") == [(link.BAD_COBS, b"")]


def test_oversized_frame_is_refused_and_the_next_one_received():
    for piece in (1, 64, 6000):
        d = link.Deframer()
        big = b"\x01" * 5000 + b"\x00"
        good = framing.encode(framing.REQUEST, 9, b"{}")
        results = feed_all(d, big + good, piece)
        assert results[0] == (link.TOO_LONG, b"")
        assert results[-1][0] == link.FRAME


def test_empty_frames_are_idle():
    assert feed_all(link.Deframer(), b"\x00\x00\x00") == []


@given(st.binary(max_size=1200), ids, st.binary(min_size=0, max_size=link.MAX_PAYLOAD))
def test_an_answer_written_in_the_frame_buffer_encodes_to_the_frame_of_a_copy(body, req_id, request):
    """A read's answer written into the deframer's buffer (answer_room: status, no allocation of its
    size) encodes there, over the request it came in, to the same frame as from a copy: encode's
    frame stays below it. An answer with no such room gets None (status then allocates)."""
    text = body.replace(b"\0", b"x")  # JSON text: no 0x00
    d = link.Deframer()
    d.payload[:len(request)] = request  # whatever the request left there
    room = d.answer_room(len(text))
    top = len(d.payload) - len(text)
    assert (room is not None) == (link.frame_size(len(text)) <= top)  # the frame never reaches the answer
    if room is None:
        return
    room[:] = text
    assert len(room) == len(text) and d.payload[top:] == text  # the buffer's top
    frame = bytes(link.encode(link.KIND_RESPONSE, req_id, room, d.payload, True))
    assert frame == bytes(link.encode(link.KIND_RESPONSE, req_id, text))
    assert framing.decode(frame[:-1]).body == text


def test_the_answer_room_ends_where_a_frame_would_reach_it():
    """Up to the largest answer whose frame stays below it (about half the buffer: status's is
    ~500 bytes), and not a byte more."""
    d = link.Deframer()
    sizes = [n for n in range(len(d.payload)) if d.answer_room(n) is not None]
    largest = max(sizes)
    assert sizes == list(range(largest + 1)) and 1000 < largest < len(d.payload) // 2
    assert link.frame_size(largest) <= len(d.payload) - largest < link.frame_size(largest + 1)
