"""The pump board and the HIL fixture board as two emulated Picos on one clock, wired as
docs/hil.md draws the bench (hil/rp2040/pair.js under Node): each with its own flash image, unique
id and USB CDC pty, so the rig's `board` back end (hil/board_rig.py) drives them exactly as it
drives two real boards on /dev/ttyACM0 and /dev/ttyACM1.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading
import tty
from pathlib import Path
from typing import Any

from hil.rp2040.board import Board, BoardError, equipment, uid_of

RUNNER = Path(__file__).resolve().parent / "pair.js"


class Pair(Board):
    """Two boards in one runner: `dut_port` (the pump) and `fixture_port` (the fixture). The
    control channel is the runner's (state, advance, pace, pulses); the boards themselves are
    reached only through their serial ports, as on a bench."""

    def __init__(self, state_dir: Path, name: str = "bench"):
        super().__init__(state_dir, name=name)
        self.dut_port = str(self.state_dir / "dut" / "ttyACM")
        self.fixture_port = str(self.state_dir / "fixture" / "ttyACM")
        self.port = self.dut_port

    def start(self, jumper: bool = False) -> "Pair":
        uf2, bootrom = equipment()
        fds, cmd = [], ["node", str(RUNNER), "--bootrom", str(bootrom), "--uf2", str(uf2)]
        for side in ("dut", "fixture"):
            folder = self.state_dir / side
            folder.mkdir(parents=True, exist_ok=True)
            master, slave = pty.openpty()
            tty.setraw(slave)
            os.set_blocking(master, False)
            link = folder / "ttyACM"
            link.unlink(missing_ok=True)
            link.symlink_to(os.ttyname(slave))
            os.close(slave)  # the runner holds the master; hosts open the slave by its path
            fds.append(master)
            cmd += [f"--{side}-flash", str(folder / "flash.bin"), f"--{side}-uid", uid_of(f"{self.name}-{side}"),
                    f"--{side}-pty-fd", str(master)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=tuple(fds),
                                      text=True, bufsize=1)
        for fd in fds:
            os.close(fd)
        first = self._proc.stdout.readline()  # type: ignore[union-attr]
        if not first:
            raise BoardError(f"the two-board runner did not start ({RUNNER})")
        self.events.append(json.loads(first))
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def state(self) -> dict[str, Any]:
        return self.call("state")

    def pulses(self, pin: int, n: int, period_us: int, high_us: int) -> float:
        """A pulse train on a fixture pin (rig ms when it ends), as if the pump's STEP drove it."""
        return self.call("pulses", pin=pin, n=n, period_us=period_us, high_us=high_us)["done_ms"]

    def stop(self) -> None:
        super().stop()
        for side in ("dut", "fixture"):
            (self.state_dir / side / "ttyACM").unlink(missing_ok=True)
