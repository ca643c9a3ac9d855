"""Errors the programmer reports: each carries a one-line reason for the user."""

from __future__ import annotations

from typing import Any


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


class KeyFileError(PumpError):
    """The host key file cannot be used: unsafe permissions, unreadable, or not valid JSON."""


class NoKey(PumpError):
    """This host holds no key for the role a request needs on this pump."""

    def __init__(self, serial: str | None, role: str, path: object):
        super().__init__(f"no {role} key for pump {serial or '(no serial)'} in {path}: "
                         f"this programmer cannot authenticate as {role}")
        self.serial = serial
        self.role = role
        self.path = path


class DeviceRefused(PumpError):
    """The device answered with an error frame; `detail` is the whole error body (it may carry
    extra keys: `limit`, `override`, `retry_in_s`)."""

    def __init__(self, code: int, name: str, text: str, detail: dict[str, Any] | None = None):
        super().__init__(f"device refused: {text} [{name}]")
        self.code = code
        self.name = name
        self.text = text
        self.detail: dict[str, Any] = detail if detail is not None else {"code": code, "error": name, "text": text}

    @property
    def retry_in_s(self) -> int | None:
        """Seconds until the device allows it again (auth lockout, PTM lockout), if it said."""
        value = self.detail.get("retry_in_s")
        return value if isinstance(value, int) else None


class AuthFailed(DeviceRefused):
    """Code 13: wrong HMAC, a replayed counter, or authentication locked out (`retry_in_s`)."""


class Unauthorized(DeviceRefused):
    """Code 12: the request needs a role this session does not have."""


_BY_CODE: dict[int, type[DeviceRefused]] = {12: Unauthorized, 13: AuthFailed}


def refusal(body: dict[str, Any]) -> DeviceRefused:
    """The DeviceRefused (or its subclass for the code) for an E frame's body."""
    code = body.get("code", 0)
    cls = _BY_CODE.get(code, DeviceRefused) if isinstance(code, int) else DeviceRefused
    return cls(code if isinstance(code, int) else 0, str(body.get("error", "error")),
               str(body.get("text", "")), dict(body))
