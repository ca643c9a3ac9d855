"""The emulated RP2040 as a rig (spec §10): the verbs of hil/rig.py's virtual-Pico rig on an
emulated Pico (board.py) that runs the firmware flashed by `itbpump flash`.

Flashing a blank board through mpremote takes about a minute, so a board is flashed once per
firmware build into a template flash image (with its keys), kept in the user's cache folder; every
fresh power-on starts from a copy of it, the keys filed in this host's key file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from hil.rp2040.board import Board
from host_tools import flash, keys as keylib
from host_tools.client import PumpClient
from host_tools.errors import PumpError

ROOT = Path(__file__).resolve().parents[2]
CLIENT_TIMEOUT_S = 10.0  # per request: the emulated core runs at about half a Pico's speed
BOOT_S = 120.0


def firmware_digest() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / "firmware").rglob("*.py")):
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "itbpump" / "rp2040" / firmware_digest()


def wait_answer(board: Board, within_s: float = BOOT_S) -> dict:
    """The firmware's hello once it answers (a boot imports its modules from flash)."""
    end = time.monotonic() + within_s
    while True:
        try:
            with PumpClient(board.port, timeout=CLIENT_TIMEOUT_S, retries=1) as c:
                return c.identity
        except PumpError:
            if time.monotonic() > end:
                raise
            time.sleep(0.5)


def template(name: str = "dut") -> Path:
    """A flash image with this build's firmware and keys (serial, keys in keys.json beside it)."""
    folder = cache_dir() / name
    if (folder / "flash.bin").is_file() and (folder / "keys.json").is_file():
        return folder
    with tempfile.TemporaryDirectory(prefix="itbpump-rp2040-template-") as d:
        # flashed behind the maintenance jumper: the firmware has never booted, so a scenario's
        # power-on is the pump's first boot (a new pump), as after `itbpump flash` on a new board
        board = Board(Path(d), name=name).start(jumper=True)
        try:
            time.sleep(2)  # MicroPython's first boot makes its file system
            report = flash.flash(board.port)
            serial = report["serial"]
            store = keylib.KeyStore()
            board_keys = {r: store.get(serial, r).hex() for r in store.roles(serial)}  # type: ignore[union-attr]
            board.call("save")
        finally:
            board.stop()
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(d) / "flash.bin", folder / "flash.bin")
        (folder / "keys.json").write_text(json.dumps({"serial": serial, "keys": board_keys}))
        os.chmod(folder / "keys.json", 0o600)
    return folder


class Rp2040Rig:
    """Power, time and the fixture of one emulated Pico; the programmer link is its pty."""

    board_kind = "rp2040"
    # what this back end can do (a scenario needing anything else is skipped with the reason)
    supports = {"clock": "paced, fast-forward on advance", "power_cut": True, "motor_stall": True,
                "battery": True, "freeze": True, "pins": ["STEP GP2", "EN GP4", "rotor GP5", "jumper GP22", "ADC3"],
                "corrupt_flash": False, "serial_noise": False}
    client_timeout = CLIENT_TIMEOUT_S

    def __init__(self, state_dir: Path | None = None):
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="itbpump-hil-rp2040-")
        self.state_dir = Path(state_dir or self._tmp.name)  # type: ignore[union-attr]
        self.board = Board(self.state_dir / "dut")
        self.port = self.board.port

    def power_on(self, fresh: bool = True) -> str:
        if fresh:
            src = template()
            self.board.state_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / "flash.bin", self.board.flash_file)
            saved = json.loads((src / "keys.json").read_text())
            keylib.KeyStore().add(saved["serial"], saved["keys"])
        self.board.start()
        wait_answer(self.board)
        return self.port

    def advance(self, ms: int) -> int:
        return self.board.advance(ms / 1000)

    def power_cut(self, off_ms: int = 0) -> None:
        self.board.power_cut(off_ms / 1000)
        wait_answer(self.board)

    def hardware(self) -> dict:
        """What the fixture sees, in the virtual Pico rig's terms."""
        s = self.board.state()
        return {"vnow_ms": s["now_ms"], "strokes": s["steps"] // 8, "steps": s["steps"],
                "rotor": s["rotor_pulses"], "motor_on": int(s["motor_on"]), "frozen": s["frozen"]}

    def stall(self, mode: str) -> None:
        self.board.rotor(mode)

    def close(self) -> None:
        self.board.stop()
        if self._tmp:
            self._tmp.cleanup()
