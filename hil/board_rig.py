"""The real-board back end of the rig (spec §10): a pump board on one serial port and the HIL
fixture board (hil/fixture/, a second Pico wired as docs/hil.md draws it) on another.

Time is real: the pump runs on its own clock while the rig waits, so a scenario that needs a
lockstep clock or days of fast-forward is skipped with the reason; a short `advance` is waited
out on the fixture's clock. The fixture counts STEP pulses, answers strokes with rotor pulses
(or withholds them), sets the battery voltage, cuts the pump's power and holds its jumper; this
module speaks its line protocol (FixtureLink) and the pump's through the programmer link.
The same code drives two emulated Picos (hil/rp2040/pair.py) in tests/test_fixture_pair.py.
"""

from __future__ import annotations

import json
import time

from hil.rig import BATTERY_MV, NOMINAL_MV, Capabilities, Rig, RigError, Unavailable
from host_tools.client import PumpClient
from host_tools.errors import PumpError

STEPS_PER_STROKE = 8  # firmware/hal/rp2.py
CAPACITY_ML = 20      # firmware/hal/rp2.py: a real board's reservoir is fixed
BOOT_S = 90.0         # power-up to the firmware's first answer (an emulated pump boots in ~15 s)
CUT_MS = 300          # a momentary power cut: long enough for the pump's supply to collapse
# what a fresh power-on removes from the pump's flash: its therapy state, event log and crash
# log (a new pump's first boot); code, ident.json and keys.json stay (the same serial and keys)
WIPE_STATE = """
import os
for n in os.listdir('/'):
    if n.startswith('state') or (n.startswith('log') and n.endswith('.bin')) or n == 'crash.log':
        os.remove(n)
"""


class FixtureLink:
    """The fixture board's USB CDC: one request line out, one JSON line back (docs/hil.md)."""

    def __init__(self, port: str, timeout: float = 10.0):
        import serial  # pyserial

        try:
            self._ser = serial.Serial(port, 115200, timeout=timeout)
        except (OSError, serial.SerialException) as e:
            raise Unavailable(f"no fixture board on {port}: {e}") from None
        self.port = port
        hello = self.request("hello")
        if hello.get("fixture") != "itbpump-fixture":
            raise Unavailable(f"{port} is not the HIL fixture board (answered {hello}); flash it: "
                              f"itbpump --port {port} flash --fixture")
        self.version = hello.get("version", "")

    def request(self, line: str) -> dict:
        self._ser.reset_input_buffer()
        self._ser.write(line.encode() + b"\n")
        for _ in range(8):
            raw = self._ser.readline()
            if not raw:
                break
            if raw.lstrip().startswith(b"{"):
                reply = json.loads(raw)
                if not reply.get("ok"):
                    raise RigError(f"the fixture refused {line!r}: {reply.get('error')}")
                return reply
        raise RigError(f"the fixture on {self.port} did not answer {line!r}")

    def close(self) -> None:
        self._ser.close()


class BoardRig(Rig):
    """A real Pico (the pump) plus the fixture board: STEP count, rotor feedback, battery voltage,
    power, RUN and jumper; real time."""

    name = "board"
    capabilities = Capabilities(
        lockstep_clock=False, fast_forward=False,  # real time: a day is a day
        faults=frozenset({"motor_stall_permanent", "motor_stall_intermittent", "battery_eri", "battery_eos",
                          "battery_fault", "battery", "power_cut", "link_noise"}),
        pins=frozenset({"step_count", "rotor", "motor_enable", "battery_sense"}))
    client_timeout = 10.0  # a Pico answers in ms; an emulated one (hil/rp2040/pair.py) is ~3x slower than one

    def __init__(self, dut: str | None = None, fixture: str | None = None):
        if not dut or not fixture:
            raise Unavailable("the board back end needs the pump board's and the fixture board's serial ports: "
                              "--rig board --dut PORT --fixture PORT (docs/hil.md, 'On a bench')")
        self.port = dut
        self.fx = FixtureLink(fixture)
        self._base_steps = 0
        self._serial = ""

    # -- power and the pump's first answer -----------------------------------------------------------
    # Waits are measured on the fixture's clock: a bench's wall clock, or the emulated pair's chip
    # time, which a loaded host slows down (a wall-clock deadline would fail there, not the pump).
    def fixture_ms(self) -> int:
        return self.fx.request("status")["ms"]

    def _cycle(self, off_ms: int = CUT_MS) -> None:
        """Cut the pump's power for off_ms (timed by the fixture) and wait until it is back."""
        start = self.fx.request(f"cut {off_ms}")["ms"]
        while True:
            s = self.fx.request("status")
            if s["power"]:
                return
            if s["ms"] - start > off_ms + 5000:
                raise RigError("the fixture did not restore the pump's power")
            time.sleep(0.1)

    def wait_answer(self, within_s: float = BOOT_S) -> dict:
        start = self.fixture_ms()
        while True:
            try:
                with PumpClient(self.port, timeout=self.client_timeout, retries=1) as c:
                    return c.identity
            except PumpError:
                if self.fixture_ms() - start > within_s * 1000:
                    raise RigError(f"the pump on {self.port} did not answer within {within_s:.0f} s") from None
                time.sleep(0.5)

    def _wipe_state(self) -> None:
        """Behind the maintenance jumper (the pump firmware stays off, its REPL open): remove the
        pump's state and log through mpremote, as a new pump's first boot finds its flash."""
        from host_tools.flash import Board as Repl, FlashError

        self.fx.request("jumper on")
        try:
            self._cycle()
            start = self.fixture_ms()
            while True:
                time.sleep(2.0)  # MicroPython boots and main.py sees the jumper
                try:
                    Repl(self.port).run("exec", WIPE_STATE)
                    break
                except FlashError:
                    if self.fixture_ms() - start > BOOT_S * 1000:
                        raise
        finally:
            self.fx.request("jumper off")

    def power_on(self, fresh: bool = True, reservoir_ml: int | None = None) -> str:
        if reservoir_ml not in (None, CAPACITY_ML):
            raise RigError(f"a pump board's reservoir is {CAPACITY_ML} mL (hal/rp2.py), not {reservoir_ml} mL")
        self.fx.request("rotor healthy")
        self.fx.request(f"battery {NOMINAL_MV}")
        self.fx.request("run release")
        if fresh:
            self._wipe_state()
        self._cycle()
        self._base_steps = self.fx.request("status")["steps"]
        self._serial = self.wait_answer().get("serial", "")
        return self.port

    def advance(self, ms: int) -> int:
        """Real time: wait until the fixture's clock has moved ms (a bench's wall clock; the emulated
        pair's chip clock, which runs slower than the wall while the chips are busy)."""
        start = self.fx.request("status")["ms"]
        while True:
            now = self.fx.request("status")["ms"]
            if now - start >= ms:
                return now
            time.sleep(min(1.0, max(0.05, (ms - (now - start)) / 1000)))

    def power_cut(self, off_ms: int = 0, mid_write: int = 0) -> None:
        if mid_write:
            raise RigError("the board back end cannot time a power cut to a flash write")
        self._cycle(max(CUT_MS, off_ms))
        self.wait_answer()

    def inject(self, fault: dict) -> None:
        kind = fault["kind"]
        if kind == "motor_stall" and "every" in fault:
            self.fx.request(f"rotor intermittent {max(21, fault['every'] // 60000)}")
        elif kind == "motor_stall":
            self.fx.request("rotor stalled")
        elif kind in BATTERY_MV or kind == "battery":
            self.fx.request(f"battery {fault.get('voltage', BATTERY_MV.get(kind, NOMINAL_MV))}")
        elif kind == "power_cut":
            self.power_cut(fault.get("off", 0), fault.get("mid_write", 0))
        else:
            raise RigError(f"the board back end has no fault {kind!r}")

    def clear(self, kind: str) -> None:
        if kind.startswith("motor_stall"):
            self.fx.request("rotor healthy")
        elif kind == "battery":
            self.fx.request(f"battery {NOMINAL_MV}")
        else:
            raise RigError(f"fault {kind!r} is momentary: nothing to clear")

    def pins(self) -> dict:
        s = self.fx.request("status")
        steps = s["steps"] - self._base_steps
        return {"now_ms": s["ms"], "strokes": steps // STEPS_PER_STROKE, "steps": steps, "rotor": s["rotor_pulses"],
                "buzzer_hz": 0, "motor_on": bool(s["motor_on"]), "battery_mv": s["vsys_mv"]}

    def tones(self) -> list[tuple[int, int]]:
        return []  # the fixture does not measure the buzzer yet (no "buzzer" pin capability)

    def describe(self) -> dict:
        return {"back_end": f"pump board on {self.port} + fixture board on {self.fx.port} (real time)",
                "board_serial": self._serial}

    def close(self) -> None:
        self.fx.close()
