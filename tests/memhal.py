"""An in-memory HAL for firmware unit tests under CPython (integration tests use the real VM)."""

from __future__ import annotations

import os

from hal import RESET_POWER, flashfs

MASK = (1 << 30) - 1
HALF = 1 << 29


class MemHal:
    board = "memory"

    def __init__(self, flash_dir: str, reset_cause: int = RESET_POWER, capacity_ml: int = 20):
        os.makedirs(flash_dir, exist_ok=True)
        os.chdir(flash_dir)  # the firmware uses flash-relative paths, as on the Pico
        self.ms = (1 << 30) - 60_000
        self.rtc = 800_000_000
        self.rx = bytearray()
        self.tx = bytearray()
        self.capacity_ml = capacity_ml
        self._reset = reset_cause
        self.strokes = 0
        self.missed = 0  # strokes without a rotor pulse (a stalled motor)
        self.stalled = False  # every stroke from now on misses its rotor pulse
        self.battery = 3000  # mV at the ADC
        self.tone = 0
        self.tones: list[tuple[int, int]] = []  # (ms, Hz) of every buzzer change
        self.motor = False  # the stepper driver enabled

    def ticks_ms(self): return self.ms & MASK
    def ticks_add(self, t, d): return (t + d) & MASK
    def ticks_diff(self, a, b): return ((a - b + HALF) & MASK) - HALF
    def rtc_seconds(self): return self.rtc
    def rtc_set(self, s): self.rtc = s
    def unique_id(self): return b"\x01\x02\x03\x04\xde\xad\xbe\xef"
    def reset_cause(self): return self._reset

    def link_read(self, buf):
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        del self.rx[:n]
        return n

    def link_write(self, data): self.tx += data
    def wait(self, deadline): pass
    def wdt_start(self, ms): pass
    def wdt_feed(self): pass
    def motor_enable(self, on): self.motor = on
    def stroke(self):
        self.strokes += 1
        self.missed += self.stalled
    def rotor_count(self): return self.strokes - self.missed
    def battery_mv(self): return self.battery

    def buzzer(self, f):
        self.tone = f
        self.tones.append((self.ms, f))

    def led(self, on): pass

    # -- flash: plain files in the cwd (the flash dir), as the sim HAL --------------------------
    flash_writes = 0
    cut_write = 0  # power fails half-way through this flash write (flash_writes number; 0: never)

    def flash_read(self, name):
        return flashfs.read(name)

    def flash_readinto(self, name, offset, buf):
        return flashfs.readinto(name, offset, buf)

    def flash_write(self, name, data, offset=-1):
        self.flash_writes += 1
        if self.cut_write and self.flash_writes >= self.cut_write:
            flashfs.write(name, data[: len(data) // 2], offset)
            raise PowerCut(name)
        flashfs.write(name, data, offset)

    def flash_rename(self, old, new): os.replace(old, new)


class PowerCut(Exception):
    """MemHal.cut_write: the power failed during a flash write (the write is half done)."""
