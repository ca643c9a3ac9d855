"""One rig interface, two back ends (spec §10): the virtual Pico now, a real Pico + fixture board later.

A rig powers the device under test, moves its time, injects faults and
reads what the fixture sees; the programmer link is separate (a serial port).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hil.vpico.control import SimControl


class RigError(Exception):
    pass


class SimRig:
    """The virtual Pico as a rig: lockstep clock, power and faults over its control socket."""

    def __init__(self, state_dir: Path | None = None):
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="itbpump-hil-")
        self.ctl = SimControl(state_dir or Path(self._tmp.name) / "sim")  # type: ignore[union-attr]
        self.port = ""

    def power_on(self, fresh: bool = True) -> str:
        self.port = self.ctl.start(clock="manual", fresh=fresh)["port"]
        return self.port

    def advance(self, ms: int) -> int:
        return self.ctl.advance(ms)

    def power_cut(self, off_ms: int = 0) -> None:
        self.ctl.power_cut(off_ms)

    def hardware(self) -> dict:
        return self.ctl.hardware()

    def close(self) -> None:
        self.ctl.stop()
        if self._tmp:
            self._tmp.cleanup()


def make_rig(spec: str) -> SimRig:
    if spec == "sim":
        return SimRig()
    raise RigError(f"rig '{spec}': the real-board back end needs the fixture board (docs/hardware.md) "
                   "and is not built yet; use --rig sim")
