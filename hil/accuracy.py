"""Delivery accuracy by the trumpet-curve method (IEC 60601-2-24), hour-scaled for an implanted pump.

For each observation window W, every window of length W along the run is compared: the percentage
by which the delivered volume differs from the programmed volume in it. The curve plots the largest
and smallest of these against W; it narrows (a trumpet) as W grows, since a stroke's granularity
matters less over longer windows.
"""

from __future__ import annotations

from bisect import bisect_right

WINDOWS_H = (1, 2, 3, 6, 12, 24, 48, 96, 168)


def _at(ts: list[int], vs: list[float], t: float) -> float:
    """The cumulative volume at t (linear between samples)."""
    i = bisect_right(ts, t)
    if i == 0:
        return vs[0]
    if i >= len(ts):
        return vs[-1]
    t0, t1 = ts[i - 1], ts[i]
    return vs[i - 1] + (vs[i] - vs[i - 1]) * (t - t0) / (t1 - t0)


def trumpet(times_s: list[int], delivered: list[float], programmed: list[float], step_s: int = 600
            ) -> list[tuple[float, float, float]]:
    """[(window hours, max % error, min % error)] for the windows the run is long enough for.
    Windows where nothing was programmed are left out (a percentage of nothing is no measure)."""
    if len(times_s) < 2:
        return []
    span = times_s[-1] - times_s[0]
    out = []
    for hours in WINDOWS_H:
        w = hours * 3600
        if w > span:
            break
        errors = []
        t = times_s[0]
        while t + w <= times_s[-1]:
            prog = _at(times_s, programmed, t + w) - _at(times_s, programmed, t)
            if prog > 0:
                got = _at(times_s, delivered, t + w) - _at(times_s, delivered, t)
                errors.append(100.0 * (got - prog) / prog)
            t += step_s
        if errors:
            out.append((float(hours), max(errors), min(errors)))
    return out
