"""The programmer link as the rig sees it: a serial trace of every byte, and link noise on demand.

The trace is what a failure report carries so the session can be replayed offline: one line per
read or write, 'SECONDS DIR HEX' (DIR '>' to the device, '<' from it). Link noise is written by the
host end of the port, so the device really receives it: garbage bytes, or the first half of a frame
(a dropped tail), before every other write while the fault is set.
"""

from __future__ import annotations

import random
import time
from typing import Any

from host_tools import framing
from host_tools.client import PumpClient


class Trace:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.lines: list[str] = []

    def add(self, direction: str, data: bytes) -> None:
        if data:
            self.lines.append(f"{time.monotonic() - self.t0:10.4f} {direction} {data.hex(' ')}")

    def note(self, text: str) -> None:
        self.lines.append(f"{time.monotonic() - self.t0:10.4f} # {text}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class Noise:
    """What to put on the line before each request (hil/schema.py link_noise)."""

    def __init__(self) -> None:
        self.pattern: str | None = None
        self.size = 32
        self.rng = random.Random(12)

    def burst(self) -> bytes:
        if self.pattern == "garbage":
            return bytes(self.rng.randrange(1, 256) for _ in range(self.size))  # no 0x00: one long bad frame
        if self.pattern == "partial_frame":
            frame = framing.encode(1, 0x7777, b'{"cmd":"status"}')
            return frame[: max(2, len(frame) // 2)]
        return b""


class _TracedSerial:
    """pyserial's Serial with every read and write traced, and noise before each write."""

    def __init__(self, ser: Any, trace: Trace, noise: Noise):
        self._ser, self._trace, self._noise = ser, trace, noise
        self._noised = False

    def write(self, data: bytes) -> int | None:
        # noise before every other write: a resend after a garbled frame goes through, as on a
        # noisy cable (noise on every write would garble every retry too)
        self._noised = not self._noised
        burst = self._noise.burst() if self._noised else b""
        if burst:
            self._trace.add("> noise", burst)
            self._ser.write(burst)
        self._trace.add(">", data)
        return self._ser.write(data)

    def read(self, n: int = 1) -> bytes:
        data = self._ser.read(n)
        self._trace.add("<", data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ser, name)


def open_client(port: str, trace: Trace, noise: Noise, timeout: float = 2.0) -> PumpClient:
    """A programmer session on `port` whose bytes are traced (and noised while link noise is set);
    `timeout` per request is the rig's (Rig.client_timeout: an emulated core is slower than a Pico).
    The client's own handshake (hello) is not traced: the port is wrapped once the session is open."""
    client = PumpClient(port, timeout=timeout)
    trace.note(f"session on {port}: {client.identity.get('serial')} {client.identity.get('board')}")
    client._ser = _TracedSerial(client._ser, trace, noise)  # type: ignore[assignment]  # pyserial duck
    return client
