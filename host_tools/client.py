"""Client library: talks to a pump over a serial port with pyserial, one method per command.

The port may be a real Pico (/dev/ttyACM0, COM3) or the virtual Pico's
pseudo-terminal: both are opened the same way, through pyserial.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

import serial

from host_tools import framing, keys as keylib
from host_tools.errors import (
    AuthFailed,
    CrcError,
    DeviceRefused,
    LinkTimeout,
    NoKey,
    PortError,
    ProtocolMismatch,
    PumpError,
    Unauthorized,
    UsageError,
    refusal,
)
from host_tools.keys import KeyStore
from host_tools.pump_facts import fact

# error codes meaning "the device did not receive our frame intact": safe to resend
_RESEND = {1: "bad_frame", 2: "bad_crc", 3: "too_long"}
LOG_DEFAULT_LAST = 50  # entries `log` returns without --last (the device's default too)
LOG_MAX_PER_REQUEST: int = fact("_LOG_LAST_MAX")  # the device's limit on `last` (log_cmd.py); more in pages

# who may do what (docs/protocol.md, "Roles"); everything else is open to anyone
CLINICIAN_COMMANDS = frozenset({"program", "bolus", "prime", "refill", "commit", "alarm_test"})
READ_WITHOUT_ARGS = frozenset({"alarms", "clock", "limits", "ptm"})  # reads for anyone; changes need a role
TWO_PHASE = frozenset({"program", "bolus", "prime", "refill", "ptm"})  # answered with a review; applied by commit


def role_for(cmd: str, args: dict[str, Any]) -> str | None:
    """The role a request needs, or None when anyone may send it (then it is not signed)."""
    if cmd in CLINICIAN_COMMANDS:
        return "clinician"
    if cmd == "patient_bolus":
        return "patient"
    if cmd in READ_WITHOUT_ARGS and args:
        return "service" if cmd == "limits" and "hard_max_mcg" in args else "clinician"
    return None


def is_prepare(cmd: str, args: dict[str, Any]) -> bool:
    """Whether the device answers this request with a review instead of applying it."""
    return cmd in TWO_PHASE and (cmd != "ptm" or bool(args))


@dataclass
class Session:
    """An authenticated session: its role, the key that signs its requests, the last counter."""

    role: str
    key: bytes
    ctr: int = 0


class PumpClient:
    """One session with one pump. Use as a context manager, or call close()."""

    def __init__(self, port: str, timeout: float = 2.0, retries: int = 3, baudrate: int = 115200,
                 keys: KeyStore | None = None):
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.keys = keys if keys is not None else KeyStore()
        self.session: Session | None = None
        try:
            self._ser = serial.Serial(port, baudrate=baudrate, timeout=0.05, write_timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as e:
            raise PortError(f"cannot open serial port {port}: {_reason(e)}") from None
        self._ser.reset_input_buffer()  # bytes from before this session are not ours
        self._rx = bytearray()
        self._next_id = random.randrange(1, 0xFFFF)
        self.alarm_events: list[dict] = []  # unsolicited alarm frames, in arrival order
        self.crc_failures = 0
        self.identity: dict[str, Any] = {}
        self.hello()  # sets identity

    # -- session ----------------------------------------------------------------
    def hello(self) -> dict:
        """Version and identity handshake; refuses a device that speaks another protocol.
        It ends any authenticated session: the next request that needs a role authenticates again."""
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
        self.identity = ident
        return ident

    def authenticate(self, role: str) -> Session:
        """Open a session in `role` by challenge-response with this host's key for this pump.
        The key never crosses the link; the session key is derived from it and the nonce."""
        serial_no = self.identity.get("serial")
        key = self.keys.get(serial_no, role) if isinstance(serial_no, str) else None
        if key is None or not isinstance(serial_no, str):
            raise NoKey(serial_no, role, self.keys.path)
        self.session = None
        challenge = self.send("auth", {"role": role})
        nonce = challenge.get("nonce")
        if challenge.get("serial") != serial_no or not isinstance(nonce, str):
            raise PumpError(f"device on {self.port} answered the {role} challenge as "
                            f"{challenge.get('serial')!r}, not {serial_no!r}: reconnect")
        answer = self.send("auth", {"role": role, "response": keylib.auth_response(key, serial_no, role, nonce)})
        if answer.get("session") is not True:
            raise PumpError(f"device on {self.port} did not open a {role} session: {answer}")
        self.session = Session(role, keylib.session_key(key, nonce))
        return self.session

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
    # host_tools.requests.build turns what a user types into these. Each is prepared, reviewed by
    # the device, and committed (change); prepare + commit separately to show the review first.
    def program(self, **args: Any) -> dict:
        """mode="continuous", dose_mcg | mode="flex", days | mode="periodic", basal_mcg, bolus_mcg,
        every_s, over_s, start_min | mode="stop", reason; optional override="REASON"."""
        return self.change("program", **args)

    def bolus(self, dose_mcg: int, over_s: int) -> dict:
        """A clinician single bolus on top of the running therapy."""
        return self.change("bolus", dose_mcg=dose_mcg, over_s=over_s)

    def prime(self, catheter_nl: int) -> dict:
        """Priming bolus after a catheter change: catheter volume (the pump adds its tubing)."""
        return self.change("prime", catheter_nl=catheter_nl)

    def refill(self, removed_nl: int, added_nl: int, concentration: int) -> dict:
        """Record a refill: volume removed, volume added, concentration in mcg/mL."""
        return self.change("refill", removed_nl=removed_nl, added_nl=added_nl, concentration=concentration)

    def ptm(self, enable: bool, dose_mcg: int | None = None, over_s: int | None = None,
            max_per_day: int | None = None, lockout_s: int | None = None, override: str | None = None) -> dict:
        """Enable (with its dose, duration, daily maximum and lockout) or disable patient boluses."""
        fields = (("dose_mcg", dose_mcg), ("over_s", over_s), ("max_per_day", max_per_day),
                  ("lockout_s", lockout_s), ("override", override))
        return self.change("ptm", enable=enable, **{k: v for k, v in fields if v is not None})

    def ptm_status(self) -> dict:
        """The patient-bolus settings and what was used in the last 24 h (anyone may read)."""
        return self.request("ptm")

    def patient_bolus(self) -> dict:
        """One patient-triggered bolus (patient key if this host holds it, else clinician)."""
        return self.request("patient_bolus")

    def limits(self, **changes: Any) -> dict:
        """The safety limits; with arguments, set those (one phase, logged). hard_max_mcg needs
        the service key."""
        return self.request("limits", **changes)

    # -- two-phase changes ----------------------------------------------------------
    def prepare(self, cmd: str, **args: Any) -> dict:
        """Ask the device to review a change without applying it: the review (token, summary,
        current/new, reference, warnings, overrides)."""
        if not is_prepare(cmd, args):
            raise UsageError(f"'{cmd}' with these arguments is not a two-phase change")
        review = self.request(cmd, **args)
        if review.get("review") is not True or not isinstance(review.get("token"), str):
            raise PumpError(f"device on {self.port} answered '{cmd}' without a review: "
                            "it does not speak two-phase programming")
        return review

    def commit(self, token: str) -> dict:
        """Apply exactly the change the device reviewed under this token."""
        return self.request("commit", token=token)

    def change(self, cmd: str, **args: Any) -> dict:
        """prepare + commit: the commit's answer, with the device's review under "review"."""
        review = self.prepare(cmd, **args)
        return {**self.commit(review["token"]), "review": review}

    def run(self, cmd: str, **args: Any) -> dict:
        """Carry out a request as a user means it: a two-phase change is prepared and committed,
        anything else is one request."""
        return self.change(cmd, **args) if is_prepare(cmd, args) else self.request(cmd, **args)

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
                return {"entries": entries, "bad": bad, "capacity": page.get("capacity"),
                        "utc_offset_min": page.get("utc_offset_min", 0)}
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
        """Send one request and return the device's answer; resends on loss, never applies twice.
        A request that needs a role is signed, authenticating first when this client has no
        session in that role, or the device lost it (then once more, in a new session)."""
        role = role_for(cmd, args)
        if role is None:
            return self.send(cmd, args)
        if role == "patient" and "patient" not in self.keys.roles(self.identity.get("serial")):
            role = "clinician"  # a clinician may give the patient bolus too
        self._check_size(cmd, len(keylib.sign(bytes(32), cmd, args, 10 ** 9)))
        for attempt in range(2):
            if self.session is None or self.session.role != role:
                self.authenticate(role)
            try:
                return self.send(cmd, args, signed=True)
            except (Unauthorized, AuthFailed):
                if attempt:
                    raise
                # the device no longer has our session (a reset, another programmer's hello or
                # auth): the request executed nothing, so open a new session and send it once more
                self.session = None
        raise AssertionError("unreachable")

    def send(self, cmd: str, args: dict[str, Any] | None = None, signed: bool = False) -> dict:
        """One request exactly as asked: unsigned, or signed with the current session whatever
        its role. No authentication of its own (request() does that)."""
        args = args or {}
        if cmd in ("hello", "auth"):
            self.session = None  # the device ends the session (and drops a prepared change) at both
        if not signed:
            # compact, and without an empty args (the device's default): a Pico reads a request
            # a byte at a time (docs/rp2040.md), so `status` is 16 bytes of JSON, not 26
            body = json.dumps({"cmd": cmd, "args": args} if args else {"cmd": cmd}, separators=(",", ":")).encode()
        elif self.session is None:
            raise PumpError(f"'{cmd}' must be signed, and there is no session: authenticate first")
        else:
            self.session.ctr += 1
            body = keylib.sign(self.session.key, cmd, args, self.session.ctr)
        return self._exchange(cmd, body)

    def _check_size(self, cmd: str, body_len: int) -> None:
        if body_len + 4 > framing.MAX_PAYLOAD:  # the device would answer too_long to every resend
            raise PumpError(f"request '{cmd}' is {body_len + 4} bytes, over the link's "
                            f"{framing.MAX_PAYLOAD}-byte frame limit")

    def _exchange(self, cmd: str, body: bytes) -> dict:
        """Send a request body under a new id until an answer for it comes (the same bytes each
        time, so the device applies it once); the answer, or DeviceRefused."""
        self._check_size(cmd, len(body))
        req_id = self._take_id()
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
            raise refusal(reply)
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
