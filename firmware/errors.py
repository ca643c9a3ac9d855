"""Error codes sent in error frames (kind 'E'); docs/protocol.md lists them."""

BAD_FRAME = 1
BAD_CRC = 2
TOO_LONG = 3
UNSUPPORTED_VERSION = 4
BAD_KIND = 5
BAD_REQUEST = 6
UNKNOWN_COMMAND = 7
BAD_ARGUMENT = 8
NOT_ALLOWED = 9
INTERNAL = 10

NAMES = {
    BAD_FRAME: "bad_frame",
    BAD_CRC: "bad_crc",
    TOO_LONG: "too_long",
    UNSUPPORTED_VERSION: "unsupported_version",
    BAD_KIND: "bad_kind",
    BAD_REQUEST: "bad_request",
    UNKNOWN_COMMAND: "unknown_command",
    BAD_ARGUMENT: "bad_argument",
    NOT_ALLOWED: "not_allowed",
    INTERNAL: "internal",
}


class CommandError(Exception):
    """A refused request: carries the code and a text that names the problem."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code = code
        self.text = text
