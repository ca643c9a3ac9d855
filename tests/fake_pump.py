"""A scripted pump for the CLI's rendering, confirmation and refusal paths (no firmware).

It speaks the real link protocol over a pty (scripted_peer.ScriptedPeer), answers `hello`, runs
the real challenge-response of `auth` with the keys it is given (so the client's signing is
exercised), and answers every other request from `answers`: a dict, or a callable
`answer(cmd, args) -> dict`; raising `Refuse(body)` sends an E frame with that body. It records
every request as `{"cmd", "args"}` plus `"signed": True` when it carried a valid MAC.
Integration tests talk to the real firmware on the virtual Pico instead.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any, Callable

from scripted_peer import ScriptedPeer

from host_tools import framing
from host_tools import keys as keylib

SERIAL = "ITB-7E570001"


class Refuse(Exception):
    """Raised by an answer callable: the pump answers with an E frame carrying `body`."""

    def __init__(self, body: dict):
        super().__init__(body.get("text", ""))
        self.body = body


def write_host_keys(config_home: Path, serial: str = SERIAL, roles: tuple[str, ...] = keylib.ROLES) -> dict:
    """A user-only host key file under config_home holding fresh keys for `roles` of `serial`."""
    keys = {role: secrets.token_hex(32) for role in roles}
    folder = config_home / "itbpump"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "keys.json"
    path.write_text(json.dumps({serial: keys}))
    os.chmod(path, 0o600)
    return keys


class FakePump(ScriptedPeer):
    def __init__(self, answers: dict | Callable[[str, dict], dict], keys: dict[str, str] | None = None,
                 serial: str = SERIAL):
        self.answers = answers
        self.keys = {role: bytes.fromhex(k) for role, k in (keys or {}).items()}
        self.serial = serial
        self.requests: list[dict] = []
        self._nonce: tuple[str, str] | None = None
        self._session: bytes | None = None
        super().__init__(self._reply)

    def cmds(self) -> list[str]:
        return [r["cmd"] for r in self.requests]

    def _reply(self, f: framing.Frame) -> bytes:
        text = f.body.decode()
        body = json.loads(text)
        cmd, args = body["cmd"], body.get("args") or {}
        try:
            if cmd == "hello":
                self._session = None
                answer: Any = {"protocol": framing.VERSION, "board": "fake", "serial": self.serial}
            elif cmd == "auth":
                answer = self._auth(args)
            else:
                rec = {"cmd": cmd, "args": args}
                if "mac" in body and self._session is not None:
                    mac = hmac.new(self._session, text[:-keylib.MAC_SUFFIX_BYTES].encode(), "sha256").hexdigest()
                    rec["signed"] = hmac.compare_digest(mac, body["mac"])
                self.requests.append(rec)
                answer = self.answers(cmd, args) if callable(self.answers) else self.answers[cmd]
        except Refuse as r:
            return framing.encode(framing.ERROR, f.req_id, json.dumps(r.body).encode())
        return framing.encode(framing.RESPONSE, f.req_id, json.dumps(answer).encode())

    def _auth(self, args: dict) -> dict:
        role = args["role"]
        if "response" not in args:
            nonce = secrets.token_hex(16)
            self._nonce = (role, nonce)
            return {"role": role, "nonce": nonce, "serial": self.serial}
        if self._nonce is None or self._nonce[0] != role or role not in self.keys:
            raise Refuse({"code": 13, "error": "auth_failed", "text": "no challenge for this role"})
        nonce = self._nonce[1]
        self._nonce = None
        if args["response"] != keylib.auth_response(self.keys[role], self.serial, role, nonce):
            raise Refuse({"code": 13, "error": "auth_failed", "text": "wrong response"})
        self._session = keylib.session_key(self.keys[role], nonce)
        return {"role": role, "session": True}
