"""One rig interface, three back ends (spec §10): the virtual Pico, an emulated RP2040, a real Pico.

A rig powers the device under test, moves its time, injects and clears faults and reads what the
fixture sees on the pins; the programmer link is separate (a serial port, `port`). Each back end
declares its Capabilities; the runner skips a scenario that needs what the back end lacks, with
the reason. Capability names are the ones hil/schema.py derives from a scenario's steps.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from hil.schema import FAULT_KINDS, PINS
from hil.vpico.control import SimControl, SimError

# battery voltages the fixture drives for the battery faults (firmware/alarms/rules.py thresholds: ERI
# below 2700 mV, EOS below 2500 mV, fault below 2200 mV); NOMINAL clears them
BATTERY_MV = {"battery_eri": 2650, "battery_eos": 2400, "battery_fault": 2000}
NOMINAL_MV = 3000


class RigError(Exception):
    """The rig cannot do what was asked (a one-line reason)."""


class PowerLost(RigError):
    """The device lost power while the rig waited on it (an armed mid-write power cut)."""


class Unavailable(RigError):
    """This back end cannot run here (no emulator, no fixture board): the reason says what is missing."""


# why a back end without it cannot run a scenario that needs it (the skip reason says so)
CLOCK_WHY = {
    "lockstep_clock": "exact device time: its clock runs on while the host talks",
    "fast_forward": "moving device time ahead faster than the wall clock: it runs in real time",
}


@dataclass(frozen=True)
class Capabilities:
    """What a back end can do; a scenario's needs (hil/schema.py validate) are names of these.

    The clock is one of three kinds (docs/hil.md "Back ends"):
      lockstep     lockstep_clock=True: time moves only when the rig says; exact and deterministic,
                   months in seconds (offers lockstep_clock and fast_forward);
      fast-forward fast_forward=True: the rig runs device time ahead much faster than the wall
                   clock (idle time skipped), but it also runs on, in real time, while the host
                   talks to the device (offers fast_forward);
      real time    neither: device time is the wall clock's (a real board); scenarios that move
                   time skip.
    """

    lockstep_clock: bool     # time moves only when the rig says (deterministic, months in seconds)
    faults: frozenset[str]   # FAULT_KINDS it can inject
    pins: frozenset[str]     # PINS its fixture observes
    fast_forward: bool = False  # device time can run far ahead of the wall clock (implied by lockstep)

    @property
    def clock(self) -> str:
        """'lockstep', 'fast-forward' or 'real time' (for reports)."""
        return "lockstep" if self.lockstep_clock else "fast-forward" if self.fast_forward else "real time"

    def offers(self) -> set[str]:
        clocks = {"lockstep_clock", "fast_forward"} if self.lockstep_clock else \
            {"fast_forward"} if self.fast_forward else set()
        return clocks | self.faults | self.pins

    def lacks(self, needs: list[str] | set[str]) -> list[str]:
        """What of `needs` (capability names) this back end does not offer, each with its kind
        (a clock with why it matters)."""
        have = self.offers()
        return [(f"fault {n}" if n in FAULT_KINDS else f"pin {n}" if n in PINS
                 else f"{n} ({CLOCK_WHY[n]})" if n in CLOCK_WHY else n)
                for n in sorted(needs) if n not in have]


class Rig(ABC):
    """What every back end does. Times are device milliseconds; strokes are STEP pulses."""

    name: str
    capabilities: Capabilities
    port: str = ""
    client_timeout: float = 2.0  # s per request on the programmer link (hil/link.py): a slow device needs more

    @abstractmethod
    def power_on(self, fresh: bool = True, reservoir_ml: int | None = None) -> str:
        """Power the device (fresh: erased flash); returns the programmer port."""

    @abstractmethod
    def advance(self, ms: int) -> int:
        """Move the device's time by ms (as fast as the clock allows: lockstep or fast-forward);
        returns the time reached."""

    @abstractmethod
    def power_cut(self, off_ms: int = 0, mid_write: int = 0) -> None:
        """Cut power now (mid_write N: during the Nth flash write from now) for off_ms."""

    @abstractmethod
    def inject(self, fault: dict) -> None:
        """Set a fault of hil/schema.py FAULTS (link_noise is the link's, see hil/link.py)."""

    @abstractmethod
    def clear(self, kind: str) -> None:
        """Clear a lasting fault: motor_stall, battery."""

    @abstractmethod
    def pins(self) -> dict:
        """What the fixture sees now: now_ms, strokes (all boots), rotor, buzzer_hz, motor_on, battery_mv."""

    @abstractmethod
    def tones(self) -> list[tuple[int, int]]:
        """Buzzer changes (device ms, Hz) since the last call."""

    @abstractmethod
    def describe(self) -> dict:
        """Back end, board serial and what else a report should name."""

    def close(self) -> None:
        """Power off and release the rig."""


class SimRig(Rig):
    """The virtual Pico: lockstep clock, power and faults over its supervisor's control socket."""

    name = "sim"
    capabilities = Capabilities(lockstep_clock=True, fast_forward=True, faults=FAULT_KINDS, pins=PINS)

    def __init__(self, state_dir: Path | None = None):
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="itbpump-hil-")
        self.ctl = SimControl(state_dir or Path(self._tmp.name) / "sim")  # type: ignore[union-attr]
        self._info: dict = {}

    def power_on(self, fresh: bool = True, reservoir_ml: int | None = None) -> str:
        self._info = self.ctl.start(clock="manual", fresh=fresh, reservoir=reservoir_ml)
        self.port = self._info["port"]
        return self.port

    def advance(self, ms: int) -> int:
        try:
            return self.ctl.advance(ms)
        except SimError as e:
            if "lost power" in str(e):
                raise PowerLost(str(e)) from None
            raise

    def power_cut(self, off_ms: int = 0, mid_write: int = 0) -> None:
        if mid_write:
            self.ctl.rig(f"cutwrite {mid_write}")  # the VM dies during that write; the supervisor reboots it
            return
        self.ctl.power_cut(off_ms)

    def inject(self, fault: dict) -> None:
        kind = fault["kind"]
        if kind == "motor_stall":
            self.ctl.rig(f"stall {max(2, fault['every'] // 60000) if 'every' in fault else 1}")
        elif kind in BATTERY_MV or kind == "battery":
            self.ctl.rig(f"battery {fault.get('voltage', BATTERY_MV.get(kind))}")
        elif kind == "power_cut":
            self.power_cut(fault.get("off", 0), fault.get("mid_write", 0))
        elif kind == "corrupt_state":
            self.ctl.corrupt_flash(fault.get("copy", "a"))
        elif kind == "clock_loss":
            self.ctl.clock_loss()
        else:
            raise RigError(f"the virtual Pico's rig has no fault {kind!r}")

    def clear(self, kind: str) -> None:
        if kind == "motor_stall":
            self.ctl.rig("stall 0")
        elif kind == "battery":
            self.ctl.rig(f"battery {NOMINAL_MV}")
        else:
            raise RigError(f"fault {kind!r} is momentary: nothing to clear")

    def pins(self) -> dict:
        hw = self.ctl.hardware()
        before = (self.ctl.info() or {}).get("plant_strokes_before", 0)
        return {"now_ms": hw["vnow_ms"], "strokes": before + hw["strokes"], "rotor": hw["rotor"],
                "buzzer_hz": hw["buzzer_hz"], "motor_on": bool(hw["motor_on"]), "battery_mv": hw["battery_mv"]}

    def tones(self) -> list[tuple[int, int]]:
        words = self.ctl.rig("tones").split()[2:]
        return [(int(t), int(hz)) for t, hz in (w.split(":") for w in words)]

    def describe(self) -> dict:
        info = self.ctl.info() or self._info
        return {"back_end": "virtual Pico (MicroPython unix port, lockstep clock)",
                "board_serial": info.get("serial", ""), "state_dir": info.get("state_dir", "")}

    def close(self) -> None:
        self.ctl.stop()
        if self._tmp:
            self._tmp.cleanup()


from hil.board_rig import BoardRig  # noqa: E402  (they build on Rig above)
from hil.rp2040.rig import Rp2040Rig  # noqa: E402

BACK_ENDS: dict[str, type[Rig]] = {"sim": SimRig, "rp2040": Rp2040Rig, "board": BoardRig}


def back_end(spec: str) -> type[Rig]:
    """The back end class for --rig SPEC ('sim', 'rp2040', 'board'; a serial port means 'board')."""
    if spec in BACK_ENDS:
        return BACK_ENDS[spec]
    if spec.startswith(("/dev/", "COM")):
        return BoardRig
    raise RigError(f"--rig {spec!r}: use one of {', '.join(BACK_ENDS)} (or a fixture board's serial port)")


def make_rig(spec: str, **options: str) -> Rig:
    """A rig; options go to the back end (the board's dut and fixture ports)."""
    cls = back_end(spec)
    if cls is BoardRig and spec != "board":
        options.setdefault("fixture", spec)  # --rig PORT: the fixture board's port
    return cls(**options)
