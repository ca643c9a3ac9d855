"""Serial framing of the programmer link (docs/protocol.md).

On the wire a frame is COBS(payload + CRC-16) followed by one 0x00. COBS
leaves no 0x00 inside a frame, so the receiver always resynchronises at the
next delimiter, whatever garbage came before; the CRC catches the rest.

payload = version (u8) | kind (u8) | request id (u16, big-endian) | body
"""

import sys
from micropython import const

MAX_PAYLOAD = const(2048)  # a 7-day flex schedule of 13 steps a day fits
HEADER_LEN = const(4)

KIND_REQUEST = const(0x51)  # 'Q' host -> device
KIND_RESPONSE = const(0x52)  # 'R' device -> host, request succeeded
KIND_ERROR = const(0x45)  # 'E' device -> host, request refused or frame bad
KIND_ALARM = const(0x41)  # 'A' device -> host, unsolicited, request id 0

# Deframer.feed() results
NOTHING = const(0)
FRAME = const(1)
BAD_COBS = const(-1)
BAD_CRC = const(-2)
TOO_LONG = const(-3)
TOO_SHORT = const(-4)


# The CRC-16 and status's template writer as machine code where the build has it for this chip
# (native/link_crc.py, in Thumb assembler on a Pico, and native/link_native.py, added by a build for
# a target chip beside the firmware's packages): on a Pico they were most of a status request's
# CPU. Elsewhere (firmware/ copied as is, CPython tests, a VM without an emitter) their bytecode
# twins (core/link_bytecode.py), loaded only then: heap.
NATIVE = False
if sys.implementation.name == "micropython":
    try:
        from link_crc import crc16 as _crc16
        from link_native import fill
        NATIVE = True
    except (ImportError, ValueError):  # no native build for this chip (ValueError: built for another)
        pass
if not NATIVE:
    from core.link_bytecode import crc16 as _crc16, fill  # noqa: F401


def crc16(data, n):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of data[:n]."""
    return _crc16(0xFFFF, n, data)


def frame_size(n):
    """The most bytes encode writes for a body of n bytes: COBS adds a byte a 254 at most, and the
    delimiter."""
    size = n + HEADER_LEN + 2
    return size + size // 254 + 2


def encode(kind, req_id, body, out=None, text=False):
    """The wire bytes of one frame, COBS(header + body + CRC-16) + 0x00, as a memoryview of out
    (at least 4 + 2 + len(body), + 1 a 254, + 2 bytes: the device reuses its deframer's payload
    buffer, which holds the largest frame) or of a new buffer. text: the body
    holds no 0x00 (JSON text: json.dumps escapes control characters), so it is not searched for
    one (find() is a compare a byte: ~0.2 ms for status's answer on a Pico).

    The header is not joined to the body (that copied every answer once more on a Pico); the CRC
    runs over the two. The body's runs of non-zero bytes are found by find() and copied by slice
    assignment (C, not a byte loop) into a view that ends at the frame's end: MicroPython's slice
    assignment moves everything after the slice (even when the lengths match), so into a large
    buffer each copy cost a move of the rest of it. The header's and the CRC's bytes go one by one.
    """
    n = len(body)
    hi = (req_id >> 8) & 0xFF
    lo = req_id & 0xFF
    c = _crc16(_crc16(0xFFFF, HEADER_LEN, bytes((1, kind, hi, lo))), n, body)
    size = frame_size(n)
    if out is None:
        out = bytearray(size)
    dest = memoryview(out)[:size]
    out[1] = 1  # the version and the kind are never 0x00: the first block's first two bytes
    out[2] = kind
    code_at = 0
    o = 3
    code = 3
    for b in (hi, lo, -1, c >> 8, c & 0xFF):  # -1: the body's place
        if b > 0:
            out[o] = b
            o += 1
            code += 1
            if code < 0xFF:
                continue
        elif b < 0:
            view = memoryview(body)
            i = 0
            while i < n:
                z = -1 if text else body.find(b"\0", i)
                end = n if z < 0 else z
                while i < end:
                    k = end - i
                    if k > 0xFF - code:
                        k = 0xFF - code
                    dest[o:o + k] = view[i:i + k]
                    o += k
                    code += k
                    i += k
                    if code == 0xFF:  # a full block: no zero implied after it
                        out[code_at] = code
                        code_at = o
                        o += 1
                        code = 1
                if z >= 0:
                    out[code_at] = code
                    code_at = o
                    o += 1
                    code = 1
                    i = z + 1
            continue
        out[code_at] = code  # a zero, or a full block
        code_at = o
        o += 1
        code = 1
    out[code_at] = code
    out[o] = 0
    return dest[:o + 1]


class Deframer:
    """Collects link bytes into frames; decoded payload lands in ``self.payload``.

    The frame buffer is allocated once; receiving allocates only the slices it copies.
    """

    def __init__(self):
        # worst-case COBS overhead is one byte in 254; decoding happens in place
        # (output never overtakes input), so one buffer serves both
        # (once a frame is taken, the device writes its answer into it: encode's out)
        self._raw = bytearray(MAX_PAYLOAD + 2 + MAX_PAYLOAD // 254 + 2)
        self._n = 0
        self._overflow = False
        self.payload = self._raw
        self._view = memoryview(self._raw)
        self.length = 0
        self.used = 0

    def answer_room(self, room):
        """A view of the frame buffer's last room bytes for a read's answer to be written in, or
        None when the frame encode makes of it would reach them. The buffer is free once a request
        is taken (it is encode's out), and encode, reading the answer there, writes the frame from
        the buffer's start without reaching it. So status's ~500 bytes need no allocation: on a
        Pico finding them free in a filled heap took up to ~0.2 ms (docs/rp2040.md)."""
        top = len(self._raw) - room
        if frame_size(room) > top:
            return None
        return self._view[top:]

    def feed_from(self, buf, start, end):
        """Take buf[start:end] up to and including the first frame delimiter (0x00); self.used is
        the index after what was taken. Return NOTHING (no delimiter yet), FRAME or a negative
        error code. A run of bytes is one find and one slice copy (C), not a call a byte."""
        raw = self._raw
        n = self._n
        z = buf.find(b"\0", start, end)
        k = (end if z < 0 else z) - start
        if k > len(raw) - n:  # longer than any frame: dropped up to its delimiter
            self._overflow = True
            k = len(raw) - n
        if k > 0:  # into a view that ends where the copy does (see encode: nothing after it to move)
            self._view[:n + k][n:] = buf[start:start + k]
            n += k
        if z < 0:  # no delimiter yet
            self.used = end
            self._n = n
            return NOTHING
        self.used = z + 1
        self._n = 0
        if self._overflow:
            self._overflow = False
            return TOO_LONG
        if n == 0:
            return NOTHING  # empty frames are idle delimiters
        # COBS decode in place: output never overtakes input; a block is one slice copy (C), in a
        # view of the frame only
        frame = self._view[:n]
        i = 0
        o = 0
        while i < n:
            code = raw[i]
            end = i + code
            if end > n:
                return BAD_COBS
            if code > 1:
                frame[o:o + code - 1] = frame[i + 1:end]
                o += code - 1
            i = end
            if code < 0xFF and i < n:
                raw[o] = 0
                o += 1
        if o < HEADER_LEN + 2:
            return TOO_SHORT
        o -= 2
        if _crc16(0xFFFF, o, raw) != (raw[o] << 8) | raw[o + 1]:
            return BAD_CRC
        if o > MAX_PAYLOAD:
            return TOO_LONG
        self.length = o
        return FRAME
