"""Drive the therapy engine through time as the device does, for CPython tests and bench/."""

from __future__ import annotations

from therapy.engine import Therapy

EPOCH_MON = 8 * 365 * 86400  # any device time will do; tests pass their own


def run_for(th: Therapy, ds: int, stroke_times: list[int] | None = None, origin: list[int] | None = None) -> None:
    """Let ds deciseconds pass: process every event inside, then idle the rest (as device.service + sync)."""
    while True:
        dt = th.next_event()
        if dt < 0 or dt > ds:
            break
        ds -= dt
        if th.step():
            th.stroked()  # an ideal plant: the rotor confirms every stroke
            if stroke_times is not None:
                stroke_times.append(th.now_s() * 10 + th.t % 10)
    th.idle(ds)
