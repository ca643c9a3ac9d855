"""Per-pump role keys on the host, and the HMAC recipes of the authentication protocol.

Each pump holds three 32-byte keys (clinician, patient, service) in its flash; a programmer that
holds a role's key can open a session in that role (docs/protocol.md, "Authentication"). The
host keeps its keys in one JSON file, `{"ITB-XXXXXXXX": {"clinician": hex, ...}, ...}`, readable
by its owner only: anyone who can read it can program the pump.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

from host_tools.errors import KeyFileError

ROLES = ("clinician", "patient", "service")
KEY_BYTES = 32
AUTH_LABEL = "itbpump-auth|"
SESSION_LABEL = "itbpump-session|"
MAC_SUFFIX_BYTES = 74  # ,"mac":"<64 hex>"}


def default_path() -> Path:
    """$XDG_CONFIG_HOME/itbpump/keys.json, else ~/.config/itbpump/keys.json (read when called,
    so a test or a supervisor that sets the variable gets its own file)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "itbpump" / "keys.json"


def serial_of(uid: bytes) -> str:
    """The serial a pump's keys are filed under, as firmware/storage/identity.py derives it from the chip
    id: "ITB-" + its last 8 hex digits."""
    return "ITB-" + uid.hex().upper()[-8:]


def new_device_keys() -> dict[str, str]:
    """A fresh key per role: 32 bytes from the OS's CSPRNG, as 64 lowercase hex digits."""
    return {role: secrets.token_hex(KEY_BYTES) for role in ROLES}


def _is_key_hex(value: object) -> bool:
    return (isinstance(value, str) and len(value) == 2 * KEY_BYTES
            and all(c in "0123456789abcdef" for c in value))


class KeyStore:
    """The host's key file. A missing file holds no keys; a file other users could read or
    change is refused rather than used (it would let them program the pump)."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else default_path()

    def get(self, serial: str | None, role: str) -> bytes | None:
        """The raw key for (serial, role), or None when this host holds none."""
        if serial is None:
            return None
        value = self._read().get(serial, {}).get(role)
        return bytes.fromhex(value) if isinstance(value, str) and _is_key_hex(value) else None

    def roles(self, serial: str | None) -> list[str]:
        """The roles this host holds a key for on that pump, in ROLES order."""
        entry = self._read().get(serial or "", {})
        return [role for role in ROLES if _is_key_hex(entry.get(role))]

    def serials(self) -> list[str]:
        return sorted(self._read())

    def add(self, serial: str, keys: dict[str, str]) -> None:
        """Store keys for one pump (replacing those roles' old keys), keeping every other pump's."""
        for role, value in keys.items():
            if role not in ROLES or not _is_key_hex(value):
                raise KeyFileError(f"not a {KEY_BYTES}-byte hex key for role {role!r} of {serial}")
        with self._locked():
            data = self._read()
            data[serial] = {**data.get(serial, {}), **keys}
            self._write(data)

    # -- the file ------------------------------------------------------------------------------
    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise KeyFileError(f"cannot read key file {self.path}: {e.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            _check_private(self.path, os.fstat(f.fileno()))
            raw = f.read()
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise KeyFileError(f"key file {self.path} is not valid JSON: {e}") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise KeyFileError(f"key file {self.path} is not {{serial: {{role: hex key}}}}")
        return data

    def _ensure_dir(self) -> None:
        """The file's folder, created owner-only (0700)."""
        folder = self.path.parent
        if not folder.is_dir():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write between processes (two virtual Picos starting at once)."""
        self._ensure_dir()
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, data: dict[str, dict[str, Any]]) -> None:
        """Write a 0600 temporary file next to the key file, then rename it into place."""
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _check_private(path: Path, st: os.stat_result) -> None:
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyFileError(f"key file {path} is accessible by other users (mode {mode:04o}): "
                           f"it holds pump keys; run: chmod 600 {path}")


# -- the protocol's HMAC recipes (docs/protocol.md, "Authentication") ----------------------------
def _hmac(key: bytes, text: str) -> hmac.HMAC:
    return hmac.new(key, text.encode(), hashlib.sha256)


def auth_response(key: bytes, serial: str, role: str, nonce: str) -> str:
    """The answer to an auth challenge: proves the key without sending it; the serial and role
    in the message stop an answer for one pump or role from passing for another."""
    return _hmac(key, AUTH_LABEL + serial + "|" + role + "|" + nonce).hexdigest()


def session_key(key: bytes, nonce: str) -> bytes:
    """The session's signing key (32 raw bytes): fresh per challenge, so signatures from an
    earlier session are worthless in this one."""
    return _hmac(key, SESSION_LABEL + nonce).digest()


def sign(skey: bytes, cmd: str, args: dict[str, Any], ctr: int) -> bytes:
    """A signed request body: the compact JSON of {cmd, args, ctr} without its closing brace,
    then `,"mac":"<HMAC-SHA256 of those bytes, hex>"}`. The counter makes every signed request
    unique, so a recorded one cannot be played again."""
    base = json.dumps({"cmd": cmd, "args": args, "ctr": ctr}, separators=(",", ":"))
    signed = base[:-1]
    mac = _hmac(skey, signed).hexdigest()
    return (signed + ',"mac":"' + mac + '"}').encode()
