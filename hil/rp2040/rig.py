"""The emulated RP2040 back end of the rig (spec §10, hil/rig.py's Rig): an emulated Pico
(board.py) running the firmware flashed by `itbpump flash`, the rig playing the fixture on its pins.

Flashing a blank board through mpremote takes about a minute, so a board is flashed once per
firmware build, behind the maintenance jumper (the firmware has never booted), into a template
flash image with its keys in the user's cache folder; every fresh power-on starts from a copy of
it: a new pump's first boot.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from hil.rig import BATTERY_MV, NOMINAL_MV, Capabilities, PowerLost, Rig, RigError, Unavailable
from hil.rp2040.board import Board, BoardError, equipment, uid_of
from host_tools import firmware_build, flash, keys as keylib
from host_tools.client import PumpClient
from host_tools.errors import PumpError

CLIENT_TIMEOUT_S = 10.0  # per request: the emulated core runs at about half a Pico's speed
BOOT_S = 300.0  # a new pump's first boot is ~8 s of RP2040 CPU: 1-2 min of wall time on a busy host
CAPACITY_ML = 20  # firmware/hal/rp2.py: a real board's reservoir is fixed


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "itbpump" / "rp2040" / firmware_build.sources_digest()


def wait_answer(board: Board, within_s: float = BOOT_S) -> dict:
    """The firmware's hello once it answers (a boot imports its modules from flash)."""
    end = time.monotonic() + within_s
    while True:
        try:
            with PumpClient(board.port, timeout=CLIENT_TIMEOUT_S, retries=1) as c:
                return c.identity
        except PumpError:
            if time.monotonic() > end:
                raise RigError(f"the emulated board on {board.port} did not answer within {within_s:.0f} s; "
                               f"the board: {_state(board)}") from None
            time.sleep(0.5)


def _state(board: Board) -> str:
    """What the board was doing (its cycles, boots, bytes sent, program counter, waiting or not):
    a board that never answers is told apart from one that is slow, or one without the firmware."""
    try:
        return str(board.state())
    except Exception as e:  # noqa: BLE001 - the runner itself may be gone
        return f"no state ({e})"


def template_name() -> str:
    """The template board's name, hence its unique id and serial: its own per firmware build, so
    two builds' templates (two checkouts on one machine) never hold different keys for one serial."""
    return f"dut-{firmware_build.sources_digest()}"


def template(name: str = "") -> Path:
    """A flash image with this build's firmware and keys (serial and keys in keys.json beside it).
    Made once: scenarios running side by side (--jobs) wait for the one that flashes it, so they
    all start from the same image with the same keys."""
    name = name or template_name()
    folder = cache_dir() / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ((folder / "flash.bin").is_file() and (folder / "keys.json").is_file()):
            _make_template(name, folder)
    return folder


def _make_template(name: str, folder: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="itbpump-rp2040-template-") as d:
        board = Board(Path(d), name=name).start(jumper=True)
        try:
            time.sleep(2)  # MicroPython's first boot makes its file system
            serial = flash.flash(board.port)["serial"]
            store = keylib.KeyStore()
            board_keys = {r: store.get(serial, r).hex() for r in store.roles(serial)}  # type: ignore[union-attr]
            board.call("save")
        finally:
            board.stop()
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(d) / "flash.bin", folder / "flash.bin")
        (folder / "keys.json").write_text(json.dumps({"serial": serial, "keys": board_keys}))
        os.chmod(folder / "keys.json", 0o600)


class Rp2040Rig(Rig):
    """The real rp2 MicroPython image and hal/rp2.py on rp2040js; the rig plays the fixture on its
    pins. Fast-forward, not lockstep: advance() skips the core's idle time (~300x), but while a
    host talks to it, its time follows the wall clock (so exact-time expectations skip)."""

    name = "rp2040"
    capabilities = Capabilities(
        lockstep_clock=False, fast_forward=True,
        faults=frozenset({"motor_stall_permanent", "motor_stall_intermittent", "battery_eri", "battery_eos",
                          "battery_fault", "battery", "power_cut", "power_cut_mid_write", "clock_loss",
                          "link_noise"}),
        pins=frozenset({"step_count", "rotor", "buzzer", "motor_enable", "battery_sense"}))
    client_timeout = CLIENT_TIMEOUT_S

    def __init__(self, state_dir: Path | None = None):
        try:
            equipment()
        except BoardError as e:
            raise Unavailable(str(e)) from None
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="itbpump-hil-rp2040-")
        # the template's unique id: the flashed firmware's serial and keys are that board's
        self.board = Board(Path(state_dir or self._tmp.name) / "dut",  # type: ignore[union-attr]
                           uid=uid_of(template_name()))
        self.port = self.board.port
        self._serial = ""
        self._cuts_before: int | None = None  # power cuts when a mid-write cut was armed

    def power_on(self, fresh: bool = True, reservoir_ml: int | None = None) -> str:
        if reservoir_ml not in (None, CAPACITY_ML):
            raise RigError(f"the emulated Pico's reservoir is {CAPACITY_ML} mL (hal/rp2.py), not {reservoir_ml} mL")
        if fresh:
            src = template()
            self.board.state_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / "flash.bin", self.board.flash_file)
            saved = json.loads((src / "keys.json").read_text())
            keylib.KeyStore().add(saved["serial"], saved["keys"])
        self.board.start()
        self.board.battery(NOMINAL_MV)
        self._serial = wait_answer(self.board).get("serial", "")
        return self.port

    def advance(self, ms: int) -> int:
        now = self.board.advance(ms / 1000)
        if self._cuts_before is not None and self.board.state()["power_cuts"] > self._cuts_before:
            self._cuts_before = None  # the armed cut met a flash write; the board rebooted and ran on
            wait_answer(self.board)
            raise PowerLost("power failed half-way through a flash write; the board rebooted")
        return now

    def power_cut(self, off_ms: int = 0, mid_write: int = 0) -> None:
        if mid_write:  # the board cuts power during that write, in a later advance
            self._cuts_before = self.board.state()["power_cuts"]
            self.board.cut_write(mid_write)
            return
        self.board.power_cut(off_ms / 1000)
        wait_answer(self.board)

    def inject(self, fault: dict) -> None:
        kind = fault["kind"]
        if kind == "motor_stall" and "every" not in fault:
            self.board.rotor("stalled")
        elif kind == "motor_stall":  # intermittent: stuck the first 20 min of every period
            self.board.rotor("intermittent", every_min=max(2, fault["every"] // 60000))
        elif kind in BATTERY_MV or kind == "battery":
            self.board.battery(fault.get("voltage", BATTERY_MV.get(kind, NOMINAL_MV)))
        elif kind == "power_cut":
            self.power_cut(fault.get("off", 0), fault.get("mid_write", 0))
        elif kind == "clock_loss":  # the DS3231 loses its battery: it restarts at 2000-01-01
            self.board.rtc(set_s=0)
            self.power_cut()
        else:
            raise RigError(f"the emulated RP2040's rig has no fault {kind!r}")

    def clear(self, kind: str) -> None:
        if kind == "motor_stall":
            self.board.rotor("healthy")
        elif kind == "battery":
            self.board.battery(NOMINAL_MV)
        else:
            raise RigError(f"fault {kind!r} is momentary: nothing to clear")

    def pins(self) -> dict:
        s = self.board.state()
        return {"now_ms": s["now_ms"], "strokes": s["steps"] // 8, "steps": s["steps"], "rotor": s["rotor_pulses"],
                "buzzer_hz": s["buzzer_hz"], "motor_on": bool(s["motor_on"]), "battery_mv": s.get("battery_mv", NOMINAL_MV)}

    def tones(self) -> list[tuple[int, int]]:
        return self.board.tones()

    def describe(self) -> dict:
        return {"back_end": "emulated RP2040 (rp2040js, MicroPython v1.28 rp2, idle fast-forward)",
                "board_serial": self._serial, "state_dir": str(self.board.state_dir)}

    def close(self) -> None:
        self.board.stop()
        if self._tmp:
            self._tmp.cleanup()
