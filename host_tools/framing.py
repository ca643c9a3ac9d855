"""Host codec for the link framing in docs/protocol.md, written from the document.

Independent of firmware/core/link.py on purpose: the tests run each against the
other, which checks the protocol document as much as the code.
"""

from __future__ import annotations

import binascii
import struct
from typing import NamedTuple

VERSION = 1
REQUEST, RESPONSE, ERROR, ALARM = 0x51, 0x52, 0x45, 0x41
MAX_PAYLOAD = 2048


class BadFrame(ValueError):
    """A received frame failed COBS, length or CRC checks."""


class Frame(NamedTuple):
    version: int
    kind: int
    req_id: int
    body: bytes


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: binascii.crc_hqx with the 0xFFFF start value."""
    return binascii.crc_hqx(data, 0xFFFF)


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for b in data:
        if b == 0:
            out += bytes((len(block) + 1,)) + block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block.clear()
    out += bytes((len(block) + 1,)) + block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            raise BadFrame("invalid COBS encoding")
        out += data[i + 1:i + code]
        i += code
        if code < 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def encode(kind: int, req_id: int, body: bytes, version: int = VERSION) -> bytes:
    """Wire bytes: a leading 0x00 (ends any partial frame at the device), the frame, 0x00."""
    payload = struct.pack(">BBH", version, kind, req_id) + body
    return b"\x00" + cobs_encode(payload + struct.pack(">H", crc16(payload))) + b"\x00"


def decode(wire: bytes) -> Frame:
    """Decode one frame's bytes (between delimiters, without the 0x00)."""
    raw = cobs_decode(wire)
    if len(raw) < 6:
        raise BadFrame(f"frame of {len(raw)} bytes is shorter than header + CRC (6)")
    payload, (crc,) = raw[:-2], struct.unpack(">H", raw[-2:])
    if crc16(payload) != crc:
        raise BadFrame("CRC-16 mismatch")
    version, kind, req_id = struct.unpack(">BBH", payload[:4])
    return Frame(version, kind, req_id, payload[4:])
