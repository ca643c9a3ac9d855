"""Serial framing of the programmer link (docs/protocol.md).

On the wire a frame is COBS(payload + CRC-16) followed by one 0x00. COBS
leaves no 0x00 inside a frame, so the receiver always resynchronises at the
next delimiter, whatever garbage came before; the CRC catches the rest.

payload = version (u8) | kind (u8) | request id (u16, big-endian) | body
"""

import sys
from array import array
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


def _crc_table():
    """CRC-16/CCITT-FALSE a nibble at a time: 16 u16 (32 bytes of heap; a byte table's 512 were
    more than the machine code saves)."""
    t = array("H", bytes(32))
    for i in range(16):
        c = i << 12
        for _ in range(4):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t[i] = c & 0xFFFF
    return t


_TABLE = _crc_table()
del _crc_table  # run once: its code need not stay in the heap


# The CRC-16 and status's template writer as machine code where the build has it for this chip
# (native/link_native.py, added by a build for a target chip beside the firmware's packages): on a
# Pico they were most of a status request's CPU. Elsewhere (firmware/ copied as is, CPython tests,
# a VM without an emitter) their bytecode twins (core/link_bytecode.py), loaded only then: heap.
NATIVE = False
if sys.implementation.name == "micropython":
    try:
        from link_native import crc16 as _crc16, fill
        NATIVE = True
    except (ImportError, ValueError):  # no native build for this chip (ValueError: built for another)
        pass
if not NATIVE:
    from core.link_bytecode import crc16 as _crc16, fill  # noqa: F401


def crc16(data, n):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of data[:n]."""
    return _crc16(data, n, _TABLE)


def encode(payload):
    """Return the wire bytes for one frame: COBS(payload + CRC) + 0x00.

    The output is allocated once at its worst-case size (growing a bytearray byte by byte
    fragments a small heap), and nothing else of the payload's size: runs of non-zero bytes are
    found by bytes.find and copied by slice assignment from a memoryview (C, not a byte loop: on
    a Pico that was most of an answer's cost); the two CRC bytes go through the byte rule.
    """
    n = len(payload)
    c = _crc16(payload, n, _TABLE)
    total = n + 2
    out = bytearray(total + total // 254 + 2)
    view = memoryview(payload)
    code_at = 0
    o = 1
    code = 1
    i = 0
    while i < n:
        z = payload.find(b"\0", i)
        end = n if z < 0 else z
        while i < end:
            k = end - i
            if k > 0xFF - code:
                k = 0xFF - code
            out[o:o + k] = view[i:i + k]
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
    for b in (c >> 8, c & 0xFF):
        if b == 0:
            out[code_at] = code
            code_at = o
            o += 1
            code = 1
        else:
            out[o] = b
            o += 1
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at = o
                o += 1
                code = 1
    out[code_at] = code
    out[o] = 0
    return memoryview(out)[:o + 1]


def header(kind, req_id):
    """The four header bytes of a payload."""
    return bytes((1, kind, (req_id >> 8) & 0xFF, req_id & 0xFF))


class Deframer:
    """Collects link bytes into frames; decoded payload lands in ``self.payload``.

    The frame buffer is allocated once; receiving allocates only the slices it copies.
    """

    def __init__(self):
        # worst-case COBS overhead is one byte in 254; decoding happens in place
        # (output never overtakes input), so one buffer serves both
        self._raw = bytearray(MAX_PAYLOAD + 2 + MAX_PAYLOAD // 254 + 2)
        self._n = 0
        self._overflow = False
        self.payload = self._raw
        self.length = 0
        self.used = 0

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
        if k > 0:
            raw[n:n + k] = buf[start:start + k]
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
        # COBS decode in place: output never overtakes input; a block is one slice copy (C)
        i = 0
        o = 0
        while i < n:
            code = raw[i]
            end = i + code
            if end > n:
                return BAD_COBS
            if code > 1:
                raw[o:o + code - 1] = raw[i + 1:end]
                o += code - 1
            i = end
            if code < 0xFF and i < n:
                raw[o] = 0
                o += 1
        if o < HEADER_LEN + 2:
            return TOO_SHORT
        o -= 2
        if _crc16(raw, o, _TABLE) != (raw[o] << 8) | raw[o + 1]:
            return BAD_CRC
        if o > MAX_PAYLOAD:
            return TOO_LONG
        self.length = o
        return FRAME
