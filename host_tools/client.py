"""Client library: talks to a pump over a serial port with pyserial, one method per command.

The port may be a real Pico (/dev/ttyACM0, COM3) or the virtual Pico's
pseudo-terminal: both are opened the same way, through pyserial.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import serial

from host_tools import framing
from host_tools.errors import (
    CrcError,
    DeviceRefused,
    LinkTimeout,
    PortError,
    ProtocolMismatch,
    PumpError,
)

# error codes meaning "the device did not receive our frame intact": safe to resend
_RESEND = {1: "bad_frame", 2: "bad_crc", 3: "too_long"}
LOG_DEFAULT_LAST = 50  # entries `log` returns without --last (the device's default too)
LOG_MAX_PER_REQUEST = 1000  # the device's limit on `last`; more are fetched in pages


class PumpClient:
    """One session with one pump. Use as a context manager, or call close()."""

    def __init__(self, port: str, timeout: float = 2.0, retries: int = 3, baudrate: int = 115200):
        self.port = port
        self.timeout = timeout
        self.retries = retries
        try:
            self._ser = serial.Serial(port, baudrate=baudrate, timeout=0.05, write_timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as e:
            raise PortError(f"cannot open serial port {port}: {_reason(e)}") from None
        self._ser.reset_input_buffer()  # bytes from before this session are not ours
        self._rx = bytearray()
        self._next_id = random.randrange(1, 0xFFFF)
        self.alarm_events: list[dict] = []  # unsolicited alarm frames, in arrival order
        self.crc_failures = 0
        self.identity = self.hello()

    # -- session ----------------------------------------------------------------
    def hello(self) -> dict:
        """Version and identity handshake; refuses a device that speaks another protocol."""
        try:
            ident = self.request("hello")
        except DeviceRefused as e:
            if e.name == "unsupported_version":
                raise ProtocolMismatch(f"device on {self.port} refused protocol {framing.VERSION}: {e.text}") from None
            raise
        if ident.get("protocol") != framing.VERSION:
            raise ProtocolMismatch(
                f"device on {self.port} speaks protocol {ident.get('protocol')}, "
                f"this programmer speaks {framing.VERSION}")
        return ident

    def close(self) -> None:
        self._ser.close()

    def __enter__(self) -> "PumpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands (one method each; plain data back) -------------------------------
    def status(self) -> dict:
        return self.request("status")

    def diag(self) -> dict:
        """Firmware heap use and tick counter."""
        return self.request("diag")

    # therapy programming (spec §3, §9): arguments in device units (mcg, nL, seconds, minutes of day);
    # host_tools.requests.build turns what a user types into these
    def program(self, **args: Any) -> dict:
        """mode="continuous", dose_mcg | mode="flex", days | mode="periodic", basal_mcg, bolus_mcg,
        every_s, over_s, start_min | mode="stop", reason."""
        return self.request("program", **args)

    def bolus(self, dose_mcg: int, over_s: int) -> dict:
        """A clinician single bolus on top of the running therapy."""
        return self.request("bolus", dose_mcg=dose_mcg, over_s=over_s)

    def prime(self, catheter_nl: int) -> dict:
        """Priming bolus after a catheter change: catheter volume (the pump adds its tubing)."""
        return self.request("prime", catheter_nl=catheter_nl)

    def refill(self, removed_nl: int, added_nl: int, concentration: int) -> dict:
        """Record a refill: volume removed, volume added, concentration in mcg/mL."""
        return self.request("refill", removed_nl=removed_nl, added_nl=added_nl, concentration=concentration)

    def clock(self, set_s: int | None = None, utc_offset_min: int | None = None) -> dict:
        """Read the clock, or set it (device seconds) and/or the local-time offset (minutes)."""
        args = {k: v for k, v in (("set_s", set_s), ("utc_offset_min", utc_offset_min)) if v is not None}
        return self.request("clock", **args)

    def log(self, last: int | None = None) -> dict:
        """The newest `last` event-log entries (default 50), oldest first, in as many requests as
        the frame limit takes: {"entries": [{"seq", "time", "event", "text"}], "bad", "capacity"}."""
        want = LOG_DEFAULT_LAST if last is None else last
        entries: list[dict] = []
        bad = 0
        before: dict[str, int] = {}
        while True:
            n = min(want - len(entries), LOG_MAX_PER_REQUEST)
            page = self.request("log", last=n, **before)
            got = page["entries"]
            entries[:0] = got
            bad += page.get("bad", 0)
            if not got or len(entries) >= want or (len(got) < n and not page.get("truncated")):
                return {"entries": entries, "bad": bad, "capacity": page.get("capacity")}
            before = {"before": got[0]["seq"]}  # the next page: older than the oldest so far

    def alarms(self, ack: bool = False) -> dict:
        """Active alarms {"alarms": [{code, priority, since, acknowledged}], "acknowledged": [codes]};
        ack=True acknowledges (silences) them all: they stay listed until their condition clears."""
        return self.request("alarms", ack=True) if ack else self.request("alarms")

    def alarm_test(self) -> dict:
        """Play the critical and the non-critical alarm tones once."""
        return self.request("alarm_test")

    # -- protocol ---------------------------------------------------------------
    def request(self, cmd: str, **args: Any) -> dict:
        """Send one request and return the device's answer; resends on loss, never applies twice."""
        req_id = self._take_id()
        body = json.dumps({"cmd": cmd, "args": args}, separators=(",", ":")).encode()
        if len(body) + 4 > framing.MAX_PAYLOAD:  # the device would answer too_long to every resend
            raise PumpError(f"request '{cmd}' is {len(body) + 4} bytes, over the link's "
                            f"{framing.MAX_PAYLOAD}-byte frame limit")
        wire = framing.encode(framing.REQUEST, req_id, body)
        last_crc = False
        for _ in range(self.retries + 1):
            self._write(wire)
            frame, crc_bad = self._await(req_id)
            last_crc = crc_bad
            if frame is None:
                continue
            reply = json.loads(frame.body) if frame.body else {}
            if frame.kind == framing.RESPONSE:
                return reply
            if frame.req_id == 0 and reply.get("code") in _RESEND:
                last_crc = reply.get("code") == 2
                continue  # the device saw a damaged frame: send it again, same id
            raise DeviceRefused(reply.get("code", 0), reply.get("error", "error"), reply.get("text", ""))
        attempts = self.retries + 1
        if last_crc:
            raise CrcError(f"CRC check failed on the link to {self.port} in {attempts} attempts")
        raise LinkTimeout(f"no answer from {self.port} to '{cmd}' within {self.timeout:g} s ({attempts} attempts)")

    def _take_id(self) -> int:
        req_id = self._next_id
        self._next_id = self._next_id % 0xFFFF + 1  # 1..65535; 0 is for unsolicited frames
        return req_id

    def _write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
        except (serial.SerialException, OSError) as e:
            raise PortError(f"write to {self.port} failed: {_reason(e)}") from None

    def _await(self, req_id: int) -> tuple[framing.Frame | None, bool]:
        """Wait for the answer to req_id (or a link-level error); queue alarm frames meanwhile."""
        deadline = time.monotonic() + self.timeout
        crc_bad = False
        while time.monotonic() < deadline:
            for raw in self._read_frames():
                try:
                    frame = framing.decode(raw)
                except framing.BadFrame:
                    self.crc_failures += 1
                    crc_bad = True
                    continue
                if frame.kind == framing.ALARM:
                    self.alarm_events.append(json.loads(frame.body))
                elif frame.req_id == req_id:
                    return frame, False
                elif frame.req_id == 0 and frame.kind == framing.ERROR:
                    return frame, False
                # else: a stale answer to an earlier request: ignore
            if crc_bad:
                return None, True
        return None, crc_bad

    def _read_frames(self) -> list[bytes]:
        try:
            chunk = self._ser.read(max(1, self._ser.in_waiting))
        except (serial.SerialException, OSError) as e:
            raise PortError(f"read from {self.port} failed: {_reason(e)}") from None
        self._rx += chunk
        frames = []
        while True:
            end = self._rx.find(0)
            if end < 0:
                break
            raw = bytes(self._rx[:end])
            del self._rx[:end + 1]
            if raw:
                frames.append(raw)
        return frames

    def poll_alarms(self, wait: float = 0.0) -> list[dict]:
        """Collect unsolicited alarm frames for up to `wait` seconds; returns all received so far."""
        deadline = time.monotonic() + wait
        while True:
            for raw in self._read_frames():
                try:
                    frame = framing.decode(raw)
                except framing.BadFrame:
                    self.crc_failures += 1
                    continue
                if frame.kind == framing.ALARM:
                    self.alarm_events.append(json.loads(frame.body))
            if time.monotonic() >= deadline:
                return list(self.alarm_events)


def _reason(e: BaseException) -> str:
    text = str(e)
    return text.split(": ", 1)[-1] if text.startswith("[Errno") else text
