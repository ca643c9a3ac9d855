"""Real Pico (RP2040) HAL for MicroPython 1.29: see hal/__init__.py for the contract.

Simulator/testbed hardware, not a medical device. Wiring: docs/hardware.md.

Everything is allocated in __init__; the hot methods (stroke, rotor_count,
ticks_*, link_read) allocate nothing, so they never trigger a GC pause.
"""

import os
import sys
import time
import select
import machine
import micropython
from micropython import const
from machine import Pin, PWM, ADC, I2C
from hal import RESET_POWER, RESET_WATCHDOG, RESET_SOFT
from hal import flashfs
from hal.ds3231 import DS3231

# link_read's byte loop as machine code where the build has it for this chip (native/link_native.py):
# the interpreter's turns between a byte's two C calls were ~0.4 ms of a status request. Without it
# (firmware/ copied as is, a build for another chip) the loop below.
try:
    from link_native import read_ready
except (ImportError, ValueError):
    read_ready = None  # type: ignore[assignment]

# -- pin map (GPIO numbers; docs/hardware.md has the wiring) -----------------
PIN_STEP = const(2)     # out: driver STEP, one pulse = one (micro)step
PIN_DIR = const(3)      # out: driver DIR, fixed forward (never reversed)
PIN_EN = const(4)       # out: driver /EN, active low (external pull-up keeps it off at reset)
PIN_ROTOR = const(5)    # in, pull-up: rotor feedback, one falling edge per stroke
PIN_BUZZER = const(15)  # out, PWM slice 7B: piezo buzzer through a transistor
PIN_LED = const(25)     # out: on-board status LED (Pico, not Pico W)
PIN_VSYS = const(29)    # ADC3: VSYS/3 through the Pico's on-board divider
PIN_MAINT = const(22)   # in, pull-up: maintenance jumper to GND (itbpump flash needs the REPL)
PIN_SDA = const(20)     # I2C0 SDA: DS3231 battery-backed real-time clock
PIN_SCL = const(21)     # I2C0 SCL


def maintenance_jumper() -> bool:
    """True when the jumper pulls GP22 low at power-up: main.py then leaves the board in its
    REPL for itbpump flash (mpremote). The pump stays off: the driver's /EN is pulled up."""
    return Pin(PIN_MAINT, Pin.IN, Pin.PULL_UP).value() == 0

# -- pump drive ----------------------------------------------------------------
STEPS_PER_STROKE = const(8)  # STEP pulses per pump stroke
STEP_HIGH_US = const(5)      # >= 1.9 us (DRV8825) / 1 us (A4988)
STEP_LOW_MS = const(1)       # sets the step rate (~1 kHz): keep below the motor's pull-in rate;
                             # sleep_ms waits in WFE, sleep_us would spin the CPU (7 ms a stroke)
DIR_FORWARD = const(1)
ROTOR_SETTLE_MS = const(5)   # the most stroke() waits after the last step for the rotor's pulse

# -- buzzer ----------------------------------------------------------------------
_BUZZER_MIN_HZ = const(20)     # rp2 PWM rejects very low frequencies; out of range is clamped
_BUZZER_MAX_HZ = const(20000)
_DUTY_HALF = const(32768)

# -- watchdog / reset cause --------------------------------------------------------
WDT_MAX_MS = const(8300)  # RP2040 hardware limit is ~8388 ms; keep a margin
# machine.reset_cause() on rp2 only knows PWRON_RESET and WDT_RESET, and
# machine.reset() reboots through the watchdog, so it also reads WDT_RESET.
# The watchdog REASON register tells the two apart: TIMER = the watchdog
# expired, FORCE = a deliberate reboot (machine.reset(), bootrom reboot).
# A RUN-pin or power-on reset clears both bits (reads as power).
_WDT_REASON = const(0x40058008)  # RP2040 WATCHDOG_BASE + REASON
_REASON_TIMER = const(1)
_REASON_FORCE = const(2)
# The clock across resets without a DS3231: SCRATCH0-2 survive a watchdog bite and
# machine.reset() (not a power cut; the bootrom and pico-sdk use SCRATCH4-7). 0 = the clock in
# seconds since 2000 at the last feed, 1 = its check word, 2 = the watchdog timeout in seconds.
_SCRATCH0 = const(0x4005800C)
_SCRATCH1 = const(0x40058010)
_SCRATCH2 = const(0x40058014)
_SCRATCH_CHECK = const(0x2A5A5A5A)
_REBASE_MS = const(86400000)  # ticks_diff stays exact within 2**29 ms: rebase the clock daily

_LINK_WAKE_MS = const(3000)  # wait() wakes at least this often to feed the watchdog: each wake costs
                             # ~0.2 ms of CPU (every 1 s, an idle pump spent 0.67 ms of CPU a second);
                             # the rest of the 8 s timeout is for the requests of one pass (each < 1 s)
_POLLIN = const(1)           # select.POLLIN


class Hal:
    board = "rp2"
    # Not in the hal/__init__.py contract but read by core/device.py (the sim HAL
    # takes it from its config); a real board has a fixed reservoir.
    capacity_ml = 20

    def __init__(self) -> None:
        # The link is USB CDC = the REPL's stdin. By default a 0x03 byte
        # (Ctrl-C) raises KeyboardInterrupt wherever the firmware is and
        # drops it into the REPL; 0x03 is an ordinary byte in binary
        # frames (CRCs, counters), so line noise or a frame could stop
        # therapy. -1 turns that off: every byte reaches link_read().
        micropython.kbd_intr(-1)

        # stepper driver: disabled and idle before anything else
        self._en = Pin(PIN_EN, Pin.OUT, value=1)
        self._step = Pin(PIN_STEP, Pin.OUT, value=0)
        self._dir = Pin(PIN_DIR, Pin.OUT, value=DIR_FORWARD)

        # rotor feedback: a hard IRQ that only bumps a small int (no allocation)
        self._rotor = 0
        self._rotor_pin = Pin(PIN_ROTOR, Pin.IN, Pin.PULL_UP)
        self._rotor_cb = self._on_rotor  # bound method made once, here
        self._rotor_pin.irq(handler=self._rotor_cb, trigger=Pin.IRQ_FALLING, hard=True)

        self._buzzer = PWM(Pin(PIN_BUZZER))
        self._buzzer.freq(1000)
        self._buzzer.duty_u16(0)
        self._led = Pin(PIN_LED, Pin.OUT, value=0)
        self._vsys = ADC(PIN_VSYS)

        self._wdt = None  # type: machine.WDT | None
        self._wdt_s = 0
        self.flash_writes = 0
        self._uid = machine.unique_id()
        self._reset = self._read_reset_cause()
        # The wall clock is the 1 MHz timer (ticks_ms) from a base: small ints, no allocation.
        # MicroPython sets the chip's RTC to 2021-01-01 at every boot, so the base comes from
        # the DS3231 (it runs on its battery), else from SCRATCH after a watchdog or soft reset.
        self._ds = None  # type: DS3231 | None
        self._base_s = self._boot_seconds()
        self._base_ms = time.ticks_ms()

        # programmer link: USB CDC stdin/stdout, raw bytes
        # stdin's readinto and the poll's ipoll bound once: no method lookup a byte (link_read)
        self._in = sys.stdin.buffer.readinto
        self._out = sys.stdout.buffer
        poll = select.poll()
        poll.register(sys.stdin, _POLLIN)
        self._poll = poll.ipoll
        self._one = bytearray(1)
        poll.ipoll(0)  # makes ipoll's reused result tuple now, not in link_read

    def _on_rotor(self, pin: Pin) -> None:
        self._rotor += 1

    @staticmethod
    def _read_reset_cause() -> int:
        if machine.reset_cause() != machine.WDT_RESET:
            return RESET_POWER
        reason = machine.mem32[_WDT_REASON]
        if reason & _REASON_TIMER:
            return RESET_WATCHDOG
        if reason & _REASON_FORCE:
            return RESET_SOFT
        return RESET_WATCHDOG

    # -- time ------------------------------------------------------------------
    # MicroPython's own functions, not methods around them: the device calls them a dozen times a
    # request and a Python call is ~15 us on a Pico. The stubs type ticks as opaque classes; on
    # the board they are small ints (period 2**30), which is what the HAL contract promises.
    ticks_ms = staticmethod(time.ticks_ms)
    ticks_add = staticmethod(time.ticks_add)
    ticks_diff = staticmethod(time.ticks_diff)

    def _boot_seconds(self) -> int:
        try:
            ds = DS3231(I2C(0, sda=Pin(PIN_SDA), scl=Pin(PIN_SCL), freq=100000))
            s = ds.seconds()
            self._ds = ds
            return s
        except (OSError, ValueError):
            pass  # no battery-backed clock on this board
        mem = machine.mem32
        if self._reset != RESET_POWER and mem[_SCRATCH1] == mem[_SCRATCH0] ^ _SCRATCH_CHECK:
            # a bite comes one timeout after the last feed; machine.reset() saves first
            late = mem[_SCRATCH2] if self._reset == RESET_WATCHDOG else 0
            return mem[_SCRATCH0] + late
        return 662774400  # 2021-01-01, what MicroPython's RTC says: the firmware then restores

    def rtc_seconds(self) -> int:
        elapsed = time.ticks_diff(time.ticks_ms(), self._base_ms)
        if elapsed >= _REBASE_MS:
            self._base_s += _REBASE_MS // 1000
            self._base_ms = time.ticks_add(self._base_ms, _REBASE_MS)
            elapsed -= _REBASE_MS
        return self._base_s + elapsed // 1000

    def rtc_set(self, seconds: int) -> None:
        self._base_s = seconds
        self._base_ms = time.ticks_ms()
        self._save_clock()
        if self._ds is not None:
            try:
                self._ds.set(seconds)
            except OSError:
                pass  # the clock chip stopped answering: the timer keeps the time until reset

    def _save_clock(self) -> None:
        s = self.rtc_seconds()
        mem = machine.mem32
        mem[_SCRATCH0] = s
        mem[_SCRATCH1] = s ^ _SCRATCH_CHECK

    # -- identity ----------------------------------------------------------------
    def unique_id(self) -> bytes:
        return self._uid

    def reset_cause(self) -> int:
        return self._reset

    def reset(self) -> None:
        """After a crash: let the watchdog bite, so the reboot reads as a watchdog reset."""
        self._save_clock()
        if self._wdt is not None:
            while True:
                time.sleep_ms(100)
        machine.reset()

    # -- flash (LittleFS) ---------------------------------------------------------
    def flash_read(self, name: str) -> "bytes | None":
        return flashfs.read(name)

    def flash_readinto(self, name: str, offset: int, buf: bytearray) -> int:
        return flashfs.readinto(name, offset, buf)

    def flash_write(self, name: str, data: bytes, offset: int = -1) -> None:
        self.flash_writes += 1
        flashfs.write(name, data, offset)

    def flash_rename(self, old: str, new: str) -> None:
        os.rename(old, new)

    # -- programmer link -----------------------------------------------------------
    def link_read(self, buf: bytearray) -> int:
        # One byte per readiness check: readinto() blocks until the buffer
        # it is given is full, so asking for more than one byte could hang
        # (a host that stops mid-frame would stop the pump until the watchdog bit).
        if read_ready is not None:
            return read_ready(buf, self._poll, self._in, self._one)
        n = 0
        size = len(buf)
        one = self._one
        ipoll = self._poll
        readinto = self._in
        while n < size:
            # ipoll, not poll: poll() returns a new list of new tuples on every call,
            # ipoll() the poll object itself with a reused tuple. Inline, not a method:
            # a call less per byte.
            for _ in ipoll(0):
                break
            else:
                return n
            readinto(one)
            buf[n] = one[0]
            n += 1
        return n

    def link_write(self, data) -> None:
        # Raw bytes (no \n -> \r\n). If the host has the port open but does
        # not read, this stalls up to ~0.5 s (MicroPython's CDC TX timeout)
        # and then drops bytes silently; with the port closed, bytes pile up in
        # the CDC FIFO and stale ones reach the host when it opens the port.
        self._out.write(data)

    def wait(self, deadline) -> None:
        if deadline is None:
            timeout = _LINK_WAKE_MS
        else:
            timeout = time.ticks_diff(deadline, time.ticks_ms())
            if timeout < 0:
                timeout = 0
            elif timeout > _LINK_WAKE_MS:
                timeout = _LINK_WAKE_MS
        self._poll(timeout)  # sleeps (WFE) until stdin is readable or timeout

    # -- watchdog -------------------------------------------------------------------
    def wdt_start(self, timeout_ms: int) -> None:
        if timeout_ms > WDT_MAX_MS:
            timeout_ms = WDT_MAX_MS
        elif timeout_ms < 1:
            timeout_ms = 1
        # Cannot be stopped once started (it keeps running in the REPL too).
        self._wdt = machine.WDT(timeout=timeout_ms)
        machine.mem32[_SCRATCH2] = (timeout_ms + 999) // 1000

    def wdt_feed(self) -> None:
        wdt = self._wdt
        if wdt is not None:
            wdt.feed()
            self._save_clock()

    # -- pump and peripherals ----------------------------------------------------------
    def motor_enable(self, on: bool) -> None:
        self._en.value(0 if on else 1)  # /EN is active low

    def stroke(self) -> None:
        # Pulses go out even with the driver disabled: the rotor then does
        # not turn, and the missing feedback pulse shows as a stall.
        step = self._step
        rotor = self._rotor
        n = STEPS_PER_STROKE
        while n:
            step.value(1)
            time.sleep_us(STEP_HIGH_US)
            step.value(0)
            time.sleep_ms(STEP_LOW_MS)
            n -= 1
        # the rotor sensor's pulse lags the last step (the rotor moves after it, the sensor's
        # board answers in its own time): wait a few ms for it before the caller looks, or a
        # healthy stroke whose pulse came 1 ms late would read as a stall
        n = ROTOR_SETTLE_MS
        while n and self._rotor == rotor:
            time.sleep_ms(1)
            n -= 1

    def rotor_count(self) -> int:
        return self._rotor

    def battery_mv(self) -> int:
        # VSYS/3 on ADC3, 3.3 V reference; max 65535 * 9900 still a small int
        return self._vsys.read_u16() * 3 * 3300 // 65535

    def buzzer(self, freq_hz: int) -> None:
        if freq_hz <= 0:
            self._buzzer.duty_u16(0)
            return
        if freq_hz < _BUZZER_MIN_HZ:
            freq_hz = _BUZZER_MIN_HZ
        elif freq_hz > _BUZZER_MAX_HZ:
            freq_hz = _BUZZER_MAX_HZ
        self._buzzer.freq(freq_hz)
        self._buzzer.duty_u16(_DUTY_HALF)

    def led(self, on: bool) -> None:
        self._led.value(1 if on else 0)
