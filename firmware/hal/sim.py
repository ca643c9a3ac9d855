"""Virtual Pico HAL: runs under the MicroPython unix port, fed by the rig supervisor.

The supervisor (hil/vpico/supervisor.py) starts this VM with:
  stdin/stdout     the programmer link (relayed to a pseudo-terminal)
  two pipe fds     the rig channel (in / out, numbers in boot.json), text lines,
                   standing for the fixture board
  $ITBPUMP_SIM_HW  a folder with boot.json (clock mode, virtual time, reset cause)

Time is virtual. With the manual clock it moves only when the rig grants it
("adv MS"); the VM then jumps from event to event up to the grant and answers
"at VNOW" once it is idle there, so months simulate in seconds and runs are
deterministic. With the realtime clock it follows the host's monotonic clock.
Ticks wrap at 2**30 ms like the Pico's and start one minute before the wrap.
"""

import sys
import os
import time
from micropython import const
from hal import flashfs

try:
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated
    pass

_PERIOD = const(0x40000000)
_MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)
TICKS_START = const(0x40000000 - 60000)
_POLLIN = const(1)
_TONES = const(48)  # buzzer changes the rig can read back (a critical pattern is 7)


def maintenance_jumper():
    """The virtual Pico has no jumper: the rig rebuilds and restarts it instead."""
    return False


def _ready(poller, timeout):
    """True when poller has an fd ready within timeout ms; ipoll allocates nothing, poll() does."""
    for _ in poller.ipoll(timeout):
        return True
    return False


def _ticks_add(t, delta):
    return (t + delta) & _MASK


def _ticks_diff(a, b):
    return ((a - b + _HALF) & _MASK) - _HALF


class Hal:
    board = "virtual-pico"
    # set by hal/sim_boot.py at power-on (annotations only: MicroPython ignores them)
    _advancing: bool
    _all_poll: Any
    _boot_v: int
    _cut_write: int
    _grant: int
    _hw: str
    _link_in: Any
    _link_out: Any
    _link_poll: Any
    _manual: bool
    _one: bytearray
    _real0: int
    _reset: int
    _rig_in: Any
    _rig_out: Any
    _rig_poll: Any
    _rotor: int
    _rtc_at: int
    _rtc_path: str
    _rtc_v: int
    _uid: bytes
    _vnow: int
    _wdt_fed: int
    _wdt_ms: int
    battery: int
    capacity_ml: int
    flash_writes: int
    led_on: bool
    motor_on: bool
    stalled: bool
    strokes: int
    tone: int

    def __init__(self):
        import hal.sim_boot  # wiring the board up is done once: its code does not stay

        try:
            hal.sim_boot.setup(self)
        finally:
            sys.modules.pop("hal.sim_boot", None)
            del hal.sim_boot  # the import bound it on the resident package too: only then is it freed

    # -- time --------------------------------------------------------------
    def now(self):
        if not self._manual:
            self._vnow = self._boot_v + time.ticks_diff(time.ticks_ms(), self._real0)
        return self._vnow

    def ticks_ms(self):
        return (TICKS_START + self.now() - self._boot_v) & _MASK

    def ticks_add(self, t, delta):
        return _ticks_add(t, delta)

    def ticks_diff(self, a, b):
        return _ticks_diff(a, b)

    def rtc_seconds(self):
        return self._rtc_at + (self.now() - self._rtc_v) // 1000

    def rtc_set(self, seconds):
        self._rtc_at, self._rtc_v = seconds, self.now()
        tmp = self._rtc_path + ".tmp"
        with open(tmp, "w") as f:
            f.write('{"rtc": %d, "at_v": %d}' % (self._rtc_at, self._rtc_v))
        os.rename(tmp, self._rtc_path)

    # -- identity ----------------------------------------------------------
    def unique_id(self):
        return self._uid

    def reset_cause(self):
        return self._reset

    def reset(self):
        sys.exit(3)  # the supervisor restarts the VM, as a watchdog reset

    # -- programmer link ---------------------------------------------------
    def link_read(self, buf):
        n = 0
        size = len(buf)
        one = self._one
        while n < size and _ready(self._link_poll, 0):
            if self._link_in.readinto(one) != 1:
                sys.exit(0)  # link closed: the rig removed power
            buf[n] = one[0]
            n += 1
        return n

    def link_write(self, data):
        self._link_out.write(data)

    def wait(self, deadline):
        """Sleep until link input or the deadline; serve rig commands meanwhile."""
        while True:
            while _ready(self._rig_poll, 0):
                self._rig_command()
            if _ready(self._link_poll, 0):
                return
            if self._manual:
                if deadline is not None:
                    target = self._vnow + max(0, _ticks_diff(deadline, self.ticks_ms()))
                    if target <= self._grant:
                        self._vnow = target
                        return
                self._vnow = self._grant
                if self._advancing:
                    self._advancing = False
                    self.rig_say("at " + str(self._vnow))
                _ready(self._all_poll, -1)
            else:
                if deadline is None:
                    timeout = 1000
                else:
                    timeout = _ticks_diff(deadline, self.ticks_ms())
                    if timeout <= 0:
                        return
                    timeout = min(timeout, 1000)
                if not _ready(self._all_poll, timeout):
                    return

    # -- rig channel (the fixture board's side) ----------------------------
    def rig_say(self, line):
        self._rig_out.write(line.encode() + b"\n")

    def _rig_command(self):
        line = self._rig_in.readline()
        if not line:
            sys.exit(0)  # rig gone: power removed
        words = line.decode().split()
        if not words:
            self.rig_say("err empty rig line")
            return
        try:
            self._rig_do(words)
        except (ValueError, IndexError):
            self.rig_say("err bad rig line: " + " ".join(words)[:60])

    def _rig_do(self, words):
        if words[0] == "adv":  # the frequent one stays resident
            if not self._manual:
                self.rig_say("err realtime clock cannot be advanced")
                return
            self._grant += int(words[1])
            self._advancing = True
            return
        import hal.sim_rig  # the fixture's other lines are rare: loaded for the line only

        try:
            hal.sim_rig.do(self, words)
        finally:
            sys.modules.pop("hal.sim_rig", None)
            del hal.sim_rig  # off the resident package too, or it stays loaded

    # -- flash ---------------------------------------------------------------
    def flash_read(self, name):
        return flashfs.read(name)

    def flash_readinto(self, name, offset, buf):
        return flashfs.readinto(name, offset, buf)

    def flash_write(self, name, data, offset=-1):
        self.flash_writes += 1
        if self._cut_write and self.flash_writes >= self._cut_write:
            flashfs.write(name, data[: len(data) // 2], offset)  # power fails half-way through
            self.rig_say("cut %d %d" % (self.strokes, self._vnow))  # what the plant saw
            sys.exit(9)  # the supervisor restarts the VM as after a power cut
        flashfs.write(name, data, offset)

    def flash_rename(self, old, new):
        os.rename(old, new)

    # -- watchdog ----------------------------------------------------------
    def wdt_start(self, timeout_ms):
        self._wdt_ms = timeout_ms
        self._wdt_fed = self.now()

    def wdt_feed(self):
        self._wdt_fed = self._vnow

    # -- pump and peripherals ----------------------------------------------
    def motor_enable(self, on):
        self.motor_on = on

    # plant faults (hal/sim_rig.py): stalled, the rotor never turns; stall_cycle_ms > 0, an
    # intermittent stall: the rotor sticks for the first STUCK_MS of every stall_cycle_ms
    stall_cycle_ms = 0
    STUCK_MS = 1200000  # 20 min

    def stroke(self):
        self.strokes += 1
        cycle = self.stall_cycle_ms
        if not self.stalled and not (cycle and self.now() % cycle < self.STUCK_MS):
            self._rotor += 1

    def rotor_count(self):
        return self._rotor

    def battery_mv(self):
        return self.battery

    # the last _TONES buzzer changes as (vnow_ms, Hz) pairs, for the rig line "tones"
    _tones: Any = None
    tones_n = 0  # changes recorded since the rig last read them (only the last _TONES are kept)

    def buzzer(self, freq_hz):
        self.tone = freq_hz
        if self._tones is None:
            self._tones = [0] * (2 * _TONES)
        i = self.tones_n % _TONES * 2
        self._tones[i] = self.now()
        self._tones[i + 1] = freq_hz
        self.tones_n += 1

    def led(self, on):
        self.led_on = on
