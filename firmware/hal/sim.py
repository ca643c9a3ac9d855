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
import select
import json
from micropython import const
from hal import RESET_POWER

_PERIOD = const(0x40000000)
_MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)
TICKS_START = const(0x40000000 - 60000)
_POLLIN = const(1)


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

    def __init__(self):
        hw = os.getenv("ITBPUMP_SIM_HW")
        if not hw:
            raise RuntimeError("ITBPUMP_SIM_HW is not set: start the virtual Pico with 'itbpump sim start'")
        self._hw = hw
        with open(hw + "/boot.json") as f:
            cfg = json.load(f)
        self._manual = cfg["clock"] == "manual"
        self._vnow = cfg["vnow_ms"]  # virtual ms since the virtual Pico was created
        self._boot_v = self._vnow
        self._grant = self._vnow
        self._advancing = False
        self._real0 = time.ticks_ms()
        self._reset = cfg.get("reset_cause", RESET_POWER)
        self.capacity_ml = cfg.get("reservoir_ml", 20)
        self._rtc_path = hw + "/rtc.json"
        try:
            with open(self._rtc_path) as f:
                r = json.load(f)
            self._rtc_at, self._rtc_v = r["rtc"], r["at_v"]
        except OSError:
            self._rtc_at, self._rtc_v = cfg["rtc_default"], 0  # the factory RTC value, set at virtual time 0
        self._uid = self._load_uid(hw)
        os.chdir(cfg["flash_dir"])
        self._rig_in = open("/dev/fd/%d" % cfg["rig_in_fd"], "rb")
        self._rig_out = open("/dev/fd/%d" % cfg["rig_out_fd"], "wb")
        self._link_in = sys.stdin.buffer
        self._link_out = sys.stdout.buffer
        self._link_poll = select.poll()
        self._link_poll.register(self._link_in, _POLLIN)
        self._rig_poll = select.poll()
        self._rig_poll.register(self._rig_in, _POLLIN)
        self._all_poll = select.poll()
        self._all_poll.register(self._link_in, _POLLIN)
        self._all_poll.register(self._rig_in, _POLLIN)
        self._one = bytearray(1)
        # plant model: motor + rotor feedback, battery, buzzer, LED
        self.motor_on = False
        self.strokes = 0
        self._rotor = 0
        self.stalled = cfg.get("stall", 0) == 1
        self.battery = cfg.get("battery", 3000)
        self.tone = 0
        self.led_on = False
        self.flash_writes = 0
        self._cut_write = 0  # rig fault: power fails during this flash write (0: never)
        self._wdt_ms = 0
        self._wdt_fed = self._vnow

    @staticmethod
    def _load_uid(hw):
        try:
            with open(hw + "/uid", "rb") as f:
                return f.read()
        except OSError:
            uid = os.urandom(8)
            with open(hw + "/uid", "wb") as f:
                f.write(uid)
            return uid

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
            json.dump({"rtc": self._rtc_at, "at_v": self._rtc_v}, f)
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

    # -- flash ---------------------------------------------------------------
    def flash_read(self, name):
        try:
            with open(name, "rb") as f:
                return f.read()
        except OSError:
            return None

    def flash_write(self, name, data, offset=-1):
        self.flash_writes += 1
        if self._cut_write and self.flash_writes >= self._cut_write:
            data = data[: len(data) // 2]  # power fails half-way through this write
            self._write(name, data, offset)
            sys.exit(9)  # the supervisor restarts the VM as after a power cut
        self._write(name, data, offset)

    @staticmethod
    def _write(name, data, offset):
        if offset < 0:
            with open(name, "wb") as f:
                f.write(data)
            return
        try:
            f = open(name, "r+b")
        except OSError:
            f = open(name, "w+b")
        try:
            f.seek(offset)
            f.write(data)
        finally:
            f.close()

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

    def stroke(self):
        self.strokes += 1
        if not self.stalled:
            self._rotor += 1

    def rotor_count(self):
        return self._rotor

    def battery_mv(self):
        return self.battery

    def buzzer(self, freq_hz):
        self.tone = freq_hz

    def led(self, on):
        self.led_on = on
