"""What each refusal of the core says: loaded only to refuse a frame or a request (Device._refuse),
so the resident core does not keep these sentences in the heap."""

from core import link
from core.version import PROTOCOL_VERSION

_TEXTS = {
    link.BAD_COBS: "frame is not valid COBS",
    link.BAD_CRC: "frame CRC-16 does not match",
    link.TOO_LONG: "frame longer than %d bytes" % link.MAX_PAYLOAD,
    link.TOO_SHORT: "frame shorter than header + CRC (6 bytes)",
    "version": "protocol version %d not supported; this device speaks version " + str(PROTOCOL_VERSION),
    "kind": "frame kind 0x%02X is not a request (0x51)",
    "req_id": "request id 0 is reserved for unsolicited frames; use 1..65535",
    "too_big": "answer of %d bytes exceeds the frame limit",
    "not_json": "request body is not JSON",
    "no_cmd": "request must be a JSON object with a string 'cmd'",
    "args": "'args' must be a JSON object",
}


def text(dev, why, value=None):
    """The sentence for why (a link.Deframer error or one of the keys above), with value in it."""
    if why == "unknown":
        return "unknown command '%s' (known: %s)" % (value[:32], ", ".join(sorted(dev.commands)))
    return _TEXTS[why] if value is None else _TEXTS[why] % value
