"""Start, stop and drive a virtual Pico: the rig's side of the supervisor's control socket."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from hil.vpico import boardlock, layout


class SimError(Exception):
    """A one-line reason the virtual Pico could not do what was asked."""


class SimControl:
    def __init__(self, state_dir: Path | str | None = None):
        self.paths = layout.Paths(Path(state_dir) if state_dir else layout.default_state_dir())

    # -- lifecycle ------------------------------------------------------------
    def status(self, timeout: float = 5.0) -> dict:
        """What this state folder's board is doing, told truthfully: {"running": False}; the
        supervisor's `status` reply with "running" and "answering" true; or, for a board whose
        supervisor holds the folder's lock but does not answer (still starting, or wedged),
        "running" true, "answering" false, its "pid" and the "error"."""
        pid = boardlock.holder(self.paths.lock)
        if pid is None:
            return {"running": False}
        run = layout.read_json(self.paths.run)
        try:
            if not run:
                raise SimError("it is starting (it has not written run.json yet)")
            reply = self._call({"op": "status"}, timeout=timeout)
        except SimError as e:
            return {"running": True, "answering": False, "pid": pid, "state_dir": str(self.paths.root),
                    "error": f"the virtual Pico in {self.paths.root} (supervisor pid {pid or '?'}) "
                             f"is running but not answering: {e}; stop it with 'itbpump sim stop'"}
        return {**reply, "ctl": run["ctl"], "running": True, "answering": True}

    def info(self) -> dict | None:
        """The running board's description, or None when this board is not running; SimError
        when it runs but does not answer."""
        now = self.status()
        if not now["running"]:
            return None
        if not now["answering"]:
            raise SimError(now["error"])
        return now

    def ensure_running(self) -> dict:
        """The running board, or one started with the defaults (the CLI's on-demand path)."""
        return self.info() or self.start()

    def start(self, clock: str = "realtime", reservoir: int | None = None, fresh: bool = False,
              heap: str = layout.DEFAULT_HEAP, timeout: float = 15.0) -> dict:
        """Boot this board (reservoir None: the size it already has, 20 mL for a new one)."""
        running = self._settled(timeout)
        if running and not fresh:
            if running["clock"] != clock or (reservoir and running["reservoir_ml"] != reservoir):
                raise SimError(
                    f"the virtual Pico in {self.paths.root} is already running with the {running['clock']} clock "
                    f"and a {running['reservoir_ml']} mL reservoir; stop it first ('itbpump sim stop')")
            return running
        if running:
            self.stop()
        if fresh and self.paths.root.exists():
            for name in ("flash", "hw"):
                shutil.rmtree(self.paths.root / name, ignore_errors=True)
            for name in ("board.json", "supervisor.log", "vm.log"):
                (self.paths.root / name).unlink(missing_ok=True)
        board = layout.read_json(self.paths.board)
        if board and reservoir and board["reservoir_ml"] != reservoir:
            raise SimError(f"the virtual Pico in {self.paths.root} has a {board['reservoir_ml']} mL reservoir; "
                           f"add --fresh for a new {reservoir} mL pump")
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.paths.run.unlink(missing_ok=True)
        with open(self.paths.supervisor_log, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hil.vpico.supervisor", "--state-dir", str(self.paths.root),
                 "--clock", clock, "--heap", heap, *(["--reservoir", str(reservoir)] if reservoir else [])],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                cwd=str(layout.FIRMWARE_DIR.parent),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.status()
            if now["running"] and now["answering"] and now["pid"] == proc.pid:
                return now
            if proc.poll() is not None:
                if boardlock.holder(self.paths.lock) is not None:  # another start won the folder
                    return self.start(clock, reservoir, False, heap, timeout)
                # it gave up (e.g. an unusable host key file): say why
                raise SimError(f"the virtual Pico supervisor exited: {self._last_log_line()}")
            time.sleep(0.05)
        raise SimError(f"the virtual Pico did not start within {timeout:.0f} s; see {self.paths.supervisor_log}")

    def _settled(self, timeout: float) -> dict | None:
        """The running board once it answers (waiting for one that is still starting), or None;
        SimError for one that runs and does not answer (the caller must not start another)."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.status(timeout=min(5.0, timeout))
            if not now["running"]:
                return None
            if now["answering"]:
                return now
            if layout.read_json(self.paths.run) or time.monotonic() >= deadline:
                raise SimError(now["error"])
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the board; False when it was not running. A board that does not answer gets
        SIGTERM, then after `timeout` SIGKILL for its whole session (supervisor and VM)."""
        pid = boardlock.holder(self.paths.lock)
        if pid is None:
            self._clear_leftovers()
            return False
        try:
            self._call({"op": "stop"}, timeout=5)
        except SimError:
            if pid:
                _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and boardlock.holder(self.paths.lock) is not None:
            time.sleep(0.02)
        pid = boardlock.holder(self.paths.lock)
        if pid:
            _signal(pid, signal.SIGKILL, group=True)
            while boardlock.holder(self.paths.lock) is not None and time.monotonic() < deadline + 5:
                time.sleep(0.02)
        self._clear_leftovers()
        return True

    def _clear_leftovers(self) -> None:
        """What a supervisor that was killed could not remove (only once nobody holds the lock)."""
        if boardlock.holder(self.paths.lock) is not None:
            return
        run = layout.read_json(self.paths.run) or {}
        for p in (self.paths.run, self.paths.root / "ttyITB", Path(run["ctl"]) if run.get("ctl") else None):
            if p is not None:
                try:
                    p.unlink()
                except OSError:
                    pass

    def _last_log_line(self) -> str:
        try:
            lines = self.paths.supervisor_log.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return lines[-1] if lines else f"see {self.paths.supervisor_log}"

    # -- rig operations ---------------------------------------------------------
    def advance(self, ms: int, timeout: float = 600.0) -> int:
        """Move the manual clock by ms; returns the virtual time reached (ms)."""
        return int(self._call({"op": "advance", "ms": int(ms)}, timeout=timeout)["vnow_ms"])

    def power_cut(self, off_ms: int = 0) -> dict:
        return self._call({"op": "power_cut", "off_ms": int(off_ms)}, timeout=15)

    def corrupt_flash(self, copy: str = "a") -> dict:
        """Flip a byte in a stored state copy ('a', 'b' or 'both'); the next boot finds it."""
        return self._call({"op": "corrupt_flash", "copy": copy}, timeout=15)

    def clock_loss(self) -> dict:
        """The RTC loses its time: after the next power cut it restarts at 2000-01-01."""
        return self._call({"op": "clock_loss"}, timeout=15)

    def rig(self, line: str) -> str:
        """Send one line to the board's rig channel; returns its one-line answer."""
        return str(self._call({"op": "rig", "line": line}, timeout=15)["line"])

    def hardware(self) -> dict:
        """What the fixture sees: virtual time, STEP count, rotor pulses, battery, buzzer, motor, stall."""
        words = self.rig("get").split()
        keys = ("vnow_ms", "strokes", "rotor", "battery_mv", "buzzer_hz", "motor_on", "stalled")
        return dict(zip(keys, (int(w) for w in words[1:])))

    # -- plumbing ---------------------------------------------------------------
    def _call(self, req: dict, timeout: float) -> dict:
        run = layout.read_json(self.paths.run)
        if not run:
            raise SimError(f"no virtual Pico is running in {self.paths.root} (start it with 'itbpump sim start')")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(run["ctl"])
            s.sendall(json.dumps(req).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    raise SimError("the virtual Pico supervisor closed the connection")
                buf += chunk
        except socket.timeout:
            raise SimError(f"the virtual Pico did not answer '{req['op']}' within {timeout:.0f} s") from None
        except OSError as e:
            raise SimError(f"cannot reach the virtual Pico supervisor: {e.strerror or e}") from None
        finally:
            s.close()
        reply = json.loads(buf)
        if not reply.get("ok"):
            raise SimError(reply.get("error", "the virtual Pico refused the request"))
        return reply


def _signal(pid: int, sig: int, group: bool = False) -> None:
    """Signal a supervisor; group: its whole session (it runs in its own, with its VM)."""
    try:
        if group and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
