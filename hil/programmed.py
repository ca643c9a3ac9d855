"""The programmed volume, computed on the host from what the scenario programmed: the reference the
delivered volume is plotted and judged against (it does not ask the firmware).

A timeline of (device second, what changed) events -> the programmed cumulative volume (nL) at any
device second, integrated piecewise between the instants the programmed rate can change. Priming is not therapy (the
drug fills dead volume) and bridges are the firmware's to do: both show as the gap they make.
"""

from __future__ import annotations

from host_tools.requests import DAYS
from host_tools.units import DEVICE_EPOCH

NL_PER_ML = 1_000_000
STEP_S = 60


class Timeline:
    def __init__(self) -> None:
        self.events: list[tuple[int, str, dict]] = []  # (device s, kind, data), in order

    def add(self, at_s: int, kind: str, data: dict) -> None:
        self.events.append((at_s, kind, data))

    def cumulative(self, times_s: list[int]) -> list[float]:
        """Programmed nL delivered by each of times_s (ascending)."""
        out: list[float] = []
        if not times_s:
            return out
        ev = sorted(self.events, key=lambda e: e[0])
        state = {"program": None, "conc": None, "offset": 0, "boluses": []}
        total = 0.0
        t = times_s[0]
        k = 0
        while k < len(ev) and ev[k][0] <= t:
            _apply(state, ev[k])
            k += 1
        for target in times_s:
            while t < target:
                nxt = min(target, _next_change(state, t), ev[k][0] if k < len(ev) else target)
                total += _rate_nl_per_s(state, t) * (nxt - t)
                t = nxt
                while k < len(ev) and ev[k][0] <= t:
                    _apply(state, ev[k])
                    k += 1
            out.append(total)
        return out


def _apply(state: dict, event: tuple[int, str, dict]) -> None:
    at, kind, data = event
    if kind == "program":
        state["program"] = None if data.get("mode") == "stop" else dict(data, since=at)
    elif kind == "concentration":
        state["conc"] = data["concentration"]
    elif kind == "offset":
        state["offset"] = data["utc_offset_min"]
    elif kind == "bolus":
        state["boluses"].append((at, at + data["over_s"], data["dose_mcg"]))


def _next_change(state: dict, t: int) -> int:
    """The next second the programmed rate may change after t: a whole minute (flex steps start on
    minutes; offsets are whole minutes), a bolus's start or end, a periodic bolus's start or end."""
    out = t - t % STEP_S + STEP_S
    for start, end, _ in state["boluses"]:
        for x in (start, end):
            if x > t:
                out = min(out, x)
    p = state["program"]
    if p and p["mode"] == "periodic":
        first = _periodic_first(p, state["offset"])
        if t < first:
            out = min(out, first)
        else:
            k = (t - first) // p["every_s"]
            for x in (first + k * p["every_s"] + p["over_s"], first + (k + 1) * p["every_s"]):
                if x > t:
                    out = min(out, x)
    return out


def _periodic_first(p: dict, offset_min: int) -> int:
    return p["since"] if p.get("start_min") is None else _next_local(p["since"], p["start_min"], offset_min)


def _rate_nl_per_s(state: dict, t: int) -> float:
    conc = state["conc"]
    p = state["program"]
    if not conc:
        return 0.0
    mcg_per_s = 0.0
    local = t + state["offset"] * 60
    minute = local % 86400 // 60
    if p and p["mode"] == "continuous":
        mcg_per_s += p["dose_mcg"] / 86400
    elif p and p["mode"] == "flex":
        days = p["days"]
        weekday = DAYS[(DEVICE_EPOCH.weekday() + local // 86400) % 7]
        yesterday = DAYS[(DAYS.index(weekday) + 6) % 7]
        steps = days.get("all") or days[weekday]
        dose = (days.get("all") or days[yesterday])[-1][1]  # before the day's first step: the day before's last
        for start, d in steps:
            if start <= minute:
                dose = d
        mcg_per_s += dose / 86400
    elif p and p["mode"] == "periodic":
        mcg_per_s += p["basal_mcg"] / 86400
        first = _periodic_first(p, state["offset"])
        if t >= first and (t - first) % p["every_s"] < p["over_s"]:
            mcg_per_s += p["bolus_mcg"] / p["over_s"]
    for start, end, dose in state["boluses"]:
        if start <= t < end:
            mcg_per_s += dose / (end - start)
    return mcg_per_s * NL_PER_ML / conc


def _next_local(at_s: int, minute_of_day: int, offset_min: int) -> int:
    local = at_s + offset_min * 60
    day = local - local % 86400
    first = day + minute_of_day * 60
    if first < local:
        first += 86400
    return first - offset_min * 60
