"""Errors the programmer reports: each carries a one-line reason for the user."""


class PumpError(Exception):
    """Base: str(e) is the one-line reason shown to the user."""


class PortError(PumpError):
    """The serial port cannot be opened, read or written."""


class NoDevice(PumpError):
    """No port was given and none could be found."""


class LinkTimeout(PumpError):
    """The device did not answer in time, after retries."""


class CrcError(PumpError):
    """Frames kept arriving damaged, after retries."""


class ProtocolMismatch(PumpError):
    """The device speaks another protocol version."""


class UsageError(PumpError):
    """The user's input is invalid: names the problem and the limit."""


class DeviceRefused(PumpError):
    """The device answered with an error frame."""

    def __init__(self, code: int, name: str, text: str):
        super().__init__(f"device refused: {text} [{name}]")
        self.code = code
        self.name = name
        self.text = text
