"""Runs on the MicroPython VM: the steady-state delivery step allocates nothing.

Drives device.Device.service() (the main loop's event step: ticks, engine,
stroke) with the heap locked; any allocation raises MemoryError.
argv: firmware directory. Prints "OK <strokes>" on success.
"""

import sys

sys.path.insert(0, sys.argv[1])
import micropython  # noqa: E402
from core.device import Device  # noqa: E402

MASK = 0x3FFFFFFF
HALF = 0x20000000


class StepHal:
    """Just enough board for Device: a tick counter the test moves, strokes counted."""

    board = "heap-lock-test"
    capacity_ml = 20

    def __init__(self):
        self.ms = 0x40000000 - 60000
        self.strokes = 0

    def ticks_ms(self):
        return self.ms & MASK

    def ticks_add(self, t, d):
        return (t + d) & MASK

    def ticks_diff(self, a, b):
        return ((a - b + HALF) & MASK) - HALF

    def rtc_seconds(self):
        return 800000000

    def stroke(self):
        self.strokes += 1

    def motor_enable(self, on):
        pass

    def rotor_count(self):
        return self.strokes  # a healthy motor: one rotor pulse per stroke

    def battery_mv(self):
        return 3000

    def link_write(self, data):
        pass


def main():
    hal = StepHal()
    dev = Device(hal)
    th = dev.therapy
    th.refill(20000000, 500)
    th.program_continuous(500)  # 1 mL/day: a stroke every 21.6 s
    for _ in range(5):  # warm up: first calls may intern or cache
        hal.ms += 21600
        dev.service()
    start = hal.strokes
    micropython.heap_lock()
    try:
        for _ in range(2000):  # across the tick wrap and 72 housekeeping ticks, never a rate boundary
            hal.ms += 21600
            dev.service()
    finally:
        micropython.heap_unlock()
    print("OK", hal.strokes - start)


main()
