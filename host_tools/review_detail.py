"""What a review shows beyond its two sides (current, new): the rows of the change itself.

Bolus: dose, volume, duration, start and end, and how far it brings the alarm and refill dates
forward. Refill: removed against expected, added, the new concentration and reservoir, the
bridge and how long it lasts. Flex: every step against the current rate, the largest step's
change beside the daily-dose change the titration guard judges, and a warning for a step that
more than doubles the current rate (a night step at 2.5 x shows as +150 %, not as the +25 % of
the day's total).
"""

from __future__ import annotations

from typing import Any

from host_tools import fields
from host_tools.durations import duration_text
from host_tools.units import clock_text, device_time, local_time, ml_exact, offset_text

STEP_WARN_RATIO = 2  # a step above this many times the current rate warns


def _pct(new: int, cur: int) -> tuple[int, str]:
    """(change in tenths of a percent, its text) of new against cur (> 0)."""
    tenths = round((new - cur) * 1000 / cur)
    sign = "+" if tenths > 0 else "-" if tenths < 0 else ""
    return tenths, f"{sign}{abs(tenths) // 10}.{abs(tenths) % 10} %"


def flex_rows(req: dict, cur_mcg: int) -> tuple[list[tuple[str, str]], list[str]]:
    """(label, text) rows and warnings for a flex request; cur_mcg: the daily dose running now."""
    days: dict[str, list[list[int]]] = req.get("days") or {}
    groups: list[tuple[list[str], list[list[int]]]] = []
    for day, steps in days.items():
        for names, same in groups:
            if same == steps:
                names.append(day)
                break
        else:
            groups.append(([day], steps))
    rows: list[tuple[str, str]] = []
    warnings: list[str] = []
    largest: tuple[int, str] | None = None
    for names, steps in groups:
        title = "every day" if names == ["all"] else ", ".join(names)
        rows.append(("steps", title))
        for start, mcg in steps:
            text = f"{clock_text(start)}  {mcg} mcg/day"
            if cur_mcg > 0:
                tenths, pct = _pct(mcg, cur_mcg)
                text += f"  {pct} against the current {cur_mcg} mcg/day"
                if mcg > STEP_WARN_RATIO * cur_mcg:
                    text += f" ({mcg / cur_mcg:.1f} x)"
                    warnings.append(f"the {clock_text(start)} step ({mcg} mcg/day) is more than twice the current "
                                    f"rate ({cur_mcg} mcg/day)")
                if largest is None or abs(tenths) > abs(largest[0]):
                    largest = (tenths, f"{pct} ({clock_text(start)}, {mcg} mcg/day against {cur_mcg} mcg/day now)")
            rows.append(("", text))
    if largest is not None:
        rows.append(("largest step", largest[1]))
    return rows, warnings


def bolus_rows(raw: dict, off: int) -> list[tuple[str, str]]:
    b: dict[str, Any] = (raw.get("new") or {}).get("bolus") or {}
    if not b:
        return []
    rows = [("bolus", f"{b.get('dose_mcg')} mcg = {ml_exact(b.get('volume_nl') or 0)} mL over "
                      f"{duration_text(b.get('over_s') or 0)}")]
    if b.get("starts_s") is not None:
        rows.append(("runs", f"{local_time(b['starts_s'], off)} to {local_time(b.get('ends_s'), off)[-5:]}"))
    cur, new = (raw.get("current") or {}).get("alarm_date"), (raw.get("new") or {}).get("alarm_date")
    if isinstance(cur, int) and isinstance(new, int) and cur > new:
        rows.append(("effect", f"alarm and refill dates {duration_text(round((cur - new) / 60) * 60)} earlier"))
    return rows


def refill_rows(raw: dict) -> list[tuple[str, str]]:
    r: dict[str, Any] = (raw.get("new") or {}).get("refill") or {}
    if not r:
        return []
    removed, expected = r.get("removed_nl") or 0, r.get("expected_nl")
    if expected is None:
        rem = f"{ml_exact(removed)} mL (a first fill: nothing expected)"
    else:
        rem = f"{ml_exact(removed)} mL, expected {ml_exact(expected)} mL (off by {ml_exact(abs(removed - expected))} mL)"
    old, conc = r.get("old_concentration"), r.get("concentration")
    added = f"{ml_exact(r.get('added_nl') or 0)} mL of {conc} mcg/mL" + (
        f" (was {old} mcg/mL)" if old and old != conc else "")
    rows = [("removed", rem), ("added", added), ("reservoir", f"{ml_exact(r.get('reservoir_nl') or 0)} mL after the refill")]
    if r.get("bridge_nl") is None:
        rows.append(("bridge", "none (same concentration)" if old else "none (a first fill)"))
    else:
        lasts = (f"about {duration_text(round(r['bridge_s'] / 60) * 60)} at the current prescription"
                 if r.get("bridge_s") else "until therapy pushes it through")
        rows.append(("bridge", f"{ml_exact(r['bridge_nl'])} mL of the old {old} mcg/mL drug in the tubing and "
                               f"catheter goes first, at its own rate: {lasts}; then the rate for {conc} mcg/mL"))
    return rows


def rows(raw: dict, req: dict | None, off: int) -> tuple[list[tuple[str, str]], list[str]]:
    """The change's own rows and the host's warnings, for review_text."""
    cmd = raw.get("cmd")
    if cmd == "program" and req and req.get("mode") == "flex":
        return flex_rows(req, (raw.get("current") or {}).get("daily_dose_mcg") or 0)
    if cmd == "bolus":
        return bolus_rows(raw, off), []
    if cmd == "refill":
        return refill_rows(raw), []
    return [], []




# -- limits and clock: one request on the pump, reviewed and confirmed by the programmer --------

def setting_rows(cmd: str, req: dict, now: dict) -> list[tuple[str, str, str]]:
    """(what, current, new) for each setting a `limits` or `clock` request changes; `now` is the
    pump's answer to the same command without arguments (read just before)."""
    rows = []
    if cmd == "limits":
        for key, value in req.items():
            f = fields.field("limits", key)
            cur = now.get(key)
            label = f.option.lstrip("-").replace("-", " ") if f else key
            show = (lambda v: "-" if v is None else fields.value_text(f, v)) if f else str  # noqa: E731
            rows.append((label, str(cur) if isinstance(cur, str) else show(cur),
                         value if isinstance(value, str) else show(value)))
        return rows
    off = now.get("utc_offset_min") or 0
    new_off = req.get("utc_offset_min", off)
    clock = now.get("clock")
    rows.append(("local time", f"{local_time(clock, off)} (UTC{offset_text(off)})",
                 f"{local_time(req.get('set_s', clock), new_off)} (UTC{offset_text(new_off)})"))
    if new_off != off:
        shift = new_off - off
        rows.append(("effect", f"local time moves {'+' if shift > 0 else '-'}{duration_text(abs(shift) * 60)}:",
                     "flex steps and periodic boluses follow local time"))
    if "set_s" in req and isinstance(clock, int):
        moved = req["set_s"] - clock
        rows.append(("clock moves", f"{'+' if moved >= 0 else '-'}{duration_text(abs(moved))}", ""))
    return rows


def setting_json(cmd: str, req: dict, now: dict) -> dict:
    """The same review for --json: current and new, under the settings' --json names."""
    cur: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for key, value in req.items():
        f = fields.field(cmd, key)
        name = f.json if f else key
        cur[name] = fields.value_json(f, now.get(key)) if f and now.get(key) is not None else now.get(key)
        new[name] = fields.value_json(f, value) if f else value
    if cmd == "clock":
        cur["set"] = device_time(now.get("clock"))
    return {"cmd": cmd, "current": cur, "new": new}
