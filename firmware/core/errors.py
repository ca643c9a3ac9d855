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
LIMIT = 11
UNAUTHORIZED = 12
AUTH_FAILED = 13

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
    LIMIT: "limit",
    UNAUTHORIZED: "unauthorized",
    AUTH_FAILED: "auth_failed",
}


class CommandError(Exception):
    """A refused request: carries the code, a text that names the problem, and optional
    machine-readable detail (e.g. which limit bound, whether an override would pass it)."""

    def __init__(self, code, text, detail=None):
        super().__init__(text)
        self.code = code
        self.text = text
        self.detail = detail
