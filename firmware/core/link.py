"""Serial framing of the programmer link (docs/protocol.md).

On the wire a frame is COBS(payload + CRC-16) followed by one 0x00. COBS
leaves no 0x00 inside a frame, so the receiver always resynchronises at the
next delimiter, whatever garbage came before; the CRC catches the rest.

payload = version (u8) | kind (u8) | request id (u16, big-endian) | body
"""

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
    t = array("H", bytes(512))  # 256 u16: a quarter of a tuple of ints' heap
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t[i] = c & 0xFFFF
    return t


_TABLE = _crc_table()


def crc16(data, n):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of data[:n]."""
    c = 0xFFFF
    t = _TABLE
    for i in range(n):  # compiled to a counter loop: nothing allocated
        c = ((c << 8) & 0xFFFF) ^ t[(c >> 8) ^ data[i]]
    return c


def encode(payload):
    """Return the wire bytes for one frame: COBS(payload + CRC) + 0x00.

    The output is allocated once at its worst-case size (growing a bytearray byte by byte
    fragments a small heap), and nothing else of the payload's size: runs of non-zero bytes are
    found by bytes.find and copied by slice assignment from a memoryview (C, not a byte loop: on
    a Pico that was most of an answer's cost); the two CRC bytes go through the byte rule.
    """
    n = len(payload)
    c = crc16(payload, n)
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

    Buffers are allocated once: receiving allocates nothing.
    """

    def __init__(self):
        # worst-case COBS overhead is one byte in 254; decoding happens in place
        # (output never overtakes input), so one buffer serves both
        self._raw = bytearray(MAX_PAYLOAD + 2 + MAX_PAYLOAD // 254 + 2)
        self._n = 0
        self._overflow = False
        self.payload = self._raw
        self.length = 0

    def feed(self, b):
        """Take one byte; return NOTHING, FRAME or a negative error code."""
        if b != 0:
            if self._n < len(self._raw):
                self._raw[self._n] = b
                self._n += 1
            else:
                self._overflow = True
            return NOTHING
        n = self._n
        self._n = 0
        if self._overflow:
            self._overflow = False
            return TOO_LONG
        if n == 0:
            return NOTHING  # empty frames are idle delimiters
        # COBS decode into payload
        raw = self._raw
        out = self.payload
        i = 0
        o = 0
        while i < n:
            code = raw[i]
            i += 1
            end = i + code - 1
            if end > n:
                return BAD_COBS
            while i < end:
                out[o] = raw[i]
                o += 1
                i += 1
            if code < 0xFF and i < n:
                out[o] = 0
                o += 1
        if o < HEADER_LEN + 2:
            return TOO_SHORT
        o -= 2
        if crc16(out, o) != (out[o] << 8) | out[o + 1]:
            return BAD_CRC
        if o > MAX_PAYLOAD:
            return TOO_LONG
        self.length = o
        return FRAME
