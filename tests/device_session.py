"""A programmer session with a CPython Device, through frames: authenticates, signs, two-phase.

Written from docs/protocol.md, independently of host_tools.client, so the firmware's side of
authentication and two-phase programming is checked against the document, not against the
host code. The virtual Pico tests use the real client over a pty.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from host_tools import framing

KEYS = {"clinician": "11" * 32, "patient": "22" * 32, "service": "33" * 32}
TWO_PHASE = ("program", "bolus", "prime", "refill", "ptm")
READ_WHEN_EMPTY = ("alarms", "clock", "limits", "ptm")
OPEN = ("hello", "status", "diag", "log", "auth")


def provision(flash_dir: str, keys: dict[str, str] = KEYS) -> None:
    """What flashing does: the device's keys.json."""
    with open(os.path.join(flash_dir, "keys.json"), "w") as f:
        json.dump(keys, f)


class DeviceSession:
    def __init__(self, dev, keys: dict[str, str] | None = None, override: str | None = "test setup"):
        self.dev = dev
        self.keys = KEYS if keys is None else keys
        self.override = override  # added to program/ptm requests that carry none (None: never)
        self.ids = iter(range(1, 1 << 16))
        self.role: str | None = None
        self.skey = b""
        self.ctr = 0
        self.unsolicited: list[dict] = []
        self.last_wire = b""

    # -- frames -----------------------------------------------------------------------------
    def wire(self, body: bytes, req_id: int | None = None) -> tuple[bool, dict]:
        """Send one request body; (answered with a response?, the answer's JSON)."""
        hal = self.dev.hal
        self.last_wire = framing.encode(framing.REQUEST, next(self.ids) if req_id is None else req_id, body)
        hal.rx += self.last_wire
        self.dev.poll_link()
        frames = [framing.decode(f) for f in bytes(hal.tx).split(b"\x00") if f]
        hal.tx.clear()
        self.unsolicited += [json.loads(f.body) for f in frames if f.req_id == 0 and f.kind == framing.ALARM]
        (answer,) = [f for f in frames if f.kind != framing.ALARM]
        return answer.kind == framing.RESPONSE, json.loads(answer.body)

    def body(self, cmd: str, args: dict, sign: bool) -> bytes:
        if not sign:
            return json.dumps({"cmd": cmd, "args": args}).encode()
        self.ctr += 1
        signed = json.dumps({"cmd": cmd, "args": args, "ctr": self.ctr}, separators=(",", ":"))[:-1].encode()
        mac = hmac.new(self.skey, signed, hashlib.sha256).hexdigest()
        return signed + b',"mac":"' + mac.encode() + b'"}'

    # -- session ----------------------------------------------------------------------------
    def auth(self, role: str = "clinician", key_hex: str | None = None) -> tuple[bool, dict]:
        good, ch = self.wire(json.dumps({"cmd": "auth", "args": {"role": role}}).encode())
        if not good:
            return good, ch
        key = bytes.fromhex(key_hex or self.keys[role])
        msg = f"itbpump-auth|{ch['serial']}|{role}|{ch['nonce']}".encode()
        resp = hmac.new(key, msg, hashlib.sha256).hexdigest()
        good, out = self.wire(json.dumps({"cmd": "auth", "args": {"role": role, "response": resp}}).encode())
        if good:
            self.role, self.ctr = role, 0
            self.skey = hmac.new(key, f"itbpump-session|{ch['nonce']}".encode(), hashlib.sha256).digest()
        return good, out

    def needs(self, cmd: str, args: dict) -> str | None:
        if cmd in OPEN or (cmd in READ_WHEN_EMPTY and not args):
            return None
        if cmd == "patient_bolus":
            return self.role if self.role in ("patient", "clinician") else "patient"
        if cmd == "limits" and "hard_max_mcg" in args:
            return "service"
        return "clinician"

    def request(self, cmd: str, **args) -> tuple[bool, dict]:
        """One request, signed by the role it needs (authenticating first); no two-phase."""
        role = self.needs(cmd, args)
        if role and self.role != role:
            good, out = self.auth(role)
            assert good, out
        return self.wire(self.body(cmd, args, role is not None))

    def ask(self, cmd: str, **args) -> tuple[bool, dict]:
        """As a clinician means it: a two-phase request is prepared, then committed."""
        if self.override and cmd in ("program", "ptm") and args and args.get("mode") != "stop":
            args.setdefault("override", self.override)
        good, out = self.request(cmd, **args)
        if not good or cmd not in TWO_PHASE or not args:
            return good, out
        good, done = self.request("commit", token=out["token"])
        if good:
            done["review"] = out
        return good, done


def session(dev) -> DeviceSession:
    """The device's test session (one per device), provisioning its keys on first use."""
    s = getattr(dev, "_test_session", None)
    if s is None:
        provision(os.getcwd())  # MemHal works inside the flash folder
        s = dev._test_session = DeviceSession(dev)
    return s
