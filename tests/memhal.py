"""An in-memory HAL for firmware unit tests under CPython (integration tests use the real VM)."""

from __future__ import annotations

import os

from hal import RESET_POWER

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
        self.tone = 0

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
    def motor_enable(self, on): pass
    def stroke(self): self.strokes += 1
    def rotor_count(self): return self.strokes
    def battery_mv(self): return 3000
    def buzzer(self, f): self.tone = f
    def led(self, on): pass
