"""An emulated Raspberry Pi Pico: rp2040js (hil/rp2040/board.js under Node) running the real rp2
MicroPython image, its USB CDC on a pseudo-terminal that pyserial, mpremote and itbpump open like
/dev/ttyACM0, and a control channel for the rig (time, power, fixture pins).

The MicroPython image and the RP2040 bootrom are third-party downloads, never in this repository:
$ITBPUMP_PICO_DIR names the folder that holds them (the Makefile sets it to ../shared/pico when that
exists). docs/rp2040.md says how to get them.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import subprocess
import threading
import time
import tty
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "board.js"
NODE_MODULES = HERE.parent / "node_modules" / "rp2040js"
IMAGE = "micropython-v1.28.0-RPI_PICO.uf2"
BOOTROM = "rp2040-bootrom-b1.bin"
CALL_TIMEOUT_S = 30.0


class BoardError(Exception):
    pass


def equipment() -> tuple[Path, Path]:
    """(MicroPython UF2, bootrom) from $ITBPUMP_PICO_DIR; BoardError says what is missing."""
    folder = os.environ.get("ITBPUMP_PICO_DIR")
    if not folder:
        raise BoardError("no RP2040 test equipment: set ITBPUMP_PICO_DIR to a folder with "
                         f"{IMAGE} and {BOOTROM} (docs/rp2040.md)")
    uf2, bootrom = Path(folder) / IMAGE, Path(folder) / BOOTROM
    for f in (uf2, bootrom):
        if not f.is_file():
            raise BoardError(f"no {f.name} in {folder} (ITBPUMP_PICO_DIR; docs/rp2040.md)")
    if shutil.which("node") is None:
        raise BoardError("node (Node.js 20) not found: the emulated RP2040 runs on rp2040js under Node")
    if not NODE_MODULES.is_dir():
        raise BoardError("rp2040js not installed: run `make test` or `npm ci --prefix hil`")
    return uf2, bootrom


def needs_equipment():
    """A pytest mark for a test module that runs emulated RP2040s: skipped with one line saying
    what is missing (conftest's summary repeats it once for the run)."""
    import pytest

    try:
        equipment()
        missing = ""
    except BoardError as e:
        missing = str(e)
    return pytest.mark.skipif(bool(missing), reason=f"RP2040 tests skipped: {missing}")


def uid_of(name: str) -> str:
    """A board's 64-bit flash unique id (what machine.unique_id() returns), stable per name."""
    return hashlib.sha256(b"itbpump-rp2040:" + name.encode()).hexdigest()[:16].upper()


class Board:
    """One emulated Pico. Its flash image lives in state_dir/flash.bin, so it keeps its file
    system across resets, power cuts and restarts; a missing image is a blank board (MicroPython
    only, as after dragging the UF2 onto a new Pico)."""

    def __init__(self, state_dir: Path, name: str = "dut", uid: str | None = None):
        self.state_dir = Path(state_dir)
        self.name = name
        self.uid = uid or uid_of(name)
        self.port = str(self.state_dir / "ttyACM")
        self.events: list[dict[str, Any]] = []
        self._proc: subprocess.Popen[str] | None = None
        self._replies: dict[int, dict[str, Any]] = {}
        self._cv = threading.Condition()
        self._next = 0

    @property
    def flash_file(self) -> Path:
        return self.state_dir / "flash.bin"

    def start(self, jumper: bool = False) -> "Board":
        uf2, bootrom = equipment()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        master, slave = pty.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        link = Path(self.port)
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(slave))
        self._proc = subprocess.Popen(
            ["node", str(RUNNER), "--bootrom", str(bootrom), "--uf2", str(uf2), "--flash", str(self.flash_file),
             "--uid", self.uid, "--pty-fd", str(master), "--jumper", "1" if jumper else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(master,), text=True, bufsize=1)
        os.close(master)
        os.close(slave)  # the runner holds the master; hosts open the slave by its path
        first = self._proc.stdout.readline()  # type: ignore[union-attr]
        if not first:
            raise BoardError(f"the RP2040 runner did not start ({RUNNER})")
        self.events.append(json.loads(first))
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self._proc and self._proc.stdout
        for line in self._proc.stdout:
            msg = json.loads(line)
            with self._cv:
                if "id" in msg:
                    self._replies[msg["id"]] = msg
                else:
                    self.events.append(msg)
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def call(self, cmd: str, timeout: float = CALL_TIMEOUT_S, **args: Any) -> dict[str, Any]:
        if self._proc is None or self._proc.poll() is not None:
            raise BoardError(f"the emulated board {self.name} is not running")
        with self._cv:
            self._next += 1
            n = self._next
        assert self._proc.stdin
        self._proc.stdin.write(json.dumps({"id": n, "cmd": cmd, **args}) + "\n")
        self._proc.stdin.flush()
        end = time.monotonic() + timeout
        with self._cv:
            while n not in self._replies:
                left = end - time.monotonic()
                if left <= 0 or self._proc.poll() is not None:
                    raise BoardError(f"the emulated board did not answer {cmd} within {timeout:.0f} s")
                self._cv.wait(left)
            reply = self._replies.pop(n)
        if not reply.get("ok"):
            raise BoardError(reply.get("error", f"{cmd} failed"))
        return reply

    # -- the rig's verbs ---------------------------------------------------------------------------
    def advance(self, seconds: float) -> int:
        """Fast-forward: run the chip for `seconds` of its time, jumping over idle time; rig ms."""
        return self.call("advance", s=seconds, timeout=max(CALL_TIMEOUT_S, seconds))["now_ms"]

    def state(self) -> dict[str, Any]:
        return self.call("state")

    def now_ms(self) -> int:
        return self.call("state")["now_ms"]

    def step_edges(self, since: int = 0) -> list[int]:
        """Rig ms of every STEP (GP2) rising edge since index `since`."""
        return self.call("steps", edges=True, **{"from": since})["edges"]

    def rotor(self, mode: str, every_min: int = 60) -> None:
        """healthy, stalled, or intermittent (stuck the first 20 min of every `every_min`)."""
        self.call("rotor", mode=mode, every_min=every_min)

    def tones(self) -> list[tuple[int, int]]:
        """The buzzer's changes (rig ms, Hz; 0 is silence) since the last call, read from its PWM
        slice (GP15, slice 7 B)."""
        return [(t, hz) for t, hz in self.call("tones")["tones"]]

    def battery(self, mv: int) -> None:
        self.call("battery", mv=mv)

    def jumper(self, on: bool) -> None:
        """The maintenance jumper (GP22 to GND): read by the firmware at power-up."""
        self.call("jumper", on=on)

    def freeze(self, on: bool = True) -> None:
        """Stop the core (a hung firmware); time, timers and the watchdog keep running."""
        self.call("freeze", on=on)

    def power_cut(self, off_s: float = 0.0) -> None:
        self.call("power_cut", off_s=off_s)

    def cut_write(self, n: int = 1) -> None:
        """Arm a power cut half-way through the n-th flash program or erase from now (half a
        page programmed, half a sector erased); the chip reboots from that flash."""
        self.call("cut_write", n=n)

    def rtc(self, set_s: int | None = None) -> int:
        """The fixture's DS3231 in seconds since 2000-01-01 (set it with set_s)."""
        args = {} if set_s is None else {"set": set_s}
        return self.call("rtc", **args)["rtc_s"]

    def pace(self, mode: str) -> None:
        """'paced': the chip's time follows the wall clock (hosts talk to it); 'free': it only
        moves in advance()."""
        self.call("pace", mode=mode)

    def wait_event(self, kind: str, since: int, timeout: float = CALL_TIMEOUT_S) -> dict[str, Any]:
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                for e in self.events[since:]:
                    if e.get("event") == kind:
                        return e
                left = end - time.monotonic()
                if left <= 0:
                    raise BoardError(f"no {kind} event within {timeout:.0f} s")
                self._cv.wait(left)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None and proc.stdin:
                proc.stdin.write(json.dumps({"id": 0, "cmd": "quit"}) + "\n")
                proc.stdin.flush()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        Path(self.port).unlink(missing_ok=True)

    def __enter__(self) -> "Board":
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
