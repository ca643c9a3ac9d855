"""What the core says when it refuses a frame or a request: loaded only to refuse (Device._refuse,
Device._link_error), so the resident core does not keep these sentences in the heap."""

from core import errors, link
from core.version import PROTOCOL_VERSION

_LINK = {
    link.BAD_COBS: (errors.BAD_FRAME, "frame is not valid COBS"),
    link.BAD_CRC: (errors.BAD_CRC, "frame CRC-16 does not match"),
    link.TOO_LONG: (errors.TOO_LONG, "frame longer than %d bytes" % link.MAX_PAYLOAD),
    link.TOO_SHORT: (errors.BAD_FRAME, "frame shorter than header + CRC (6 bytes)"),
}

_TEXTS = {
    "version": "protocol version %d not supported; this device speaks version " + str(PROTOCOL_VERSION),
    "kind": "frame kind 0x%02X is not a request (0x51)",
    "req_id": "request id 0 is reserved for unsolicited frames; use 1..65535",
    "too_big": "answer of %d bytes exceeds the frame limit",
    "not_json": "request body is not JSON",
    "no_cmd": "request must be a JSON object with a string 'cmd'",
    "args": "'args' must be a JSON object",
}


def text(dev, why, value=None):
    """The sentence for why (one of the keys above, or "unknown"), with value in it."""
    if why == "unknown":
        return "unknown command '%s' (known: %s)" % (value[:32], ", ".join(sorted(dev.commands)))
    return _TEXTS[why] if value is None else _TEXTS[why] % value


def link_error(r):
    """(error code, sentence) of a link.Deframer error."""
    return _LINK[r]
