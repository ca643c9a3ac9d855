"""What the user typed -> the device request to send: parsing, validation and unit conversion.

Pure functions, no I/O: `build(args)` takes the argparse namespace of a therapy command and
returns `(cmd, args)` for `PumpClient.request(cmd, **args)`, in device units (integer mcg, nL,
seconds, minutes after local midnight, device seconds). Bad input raises `UsageError` naming the
field, the problem and the limit. The clinical limits (titration, ceiling, drug library, bolus
cap, reservoir capacity) are the device's to check; this module only refuses what cannot be a
well-formed request.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from host_tools.durations import format_duration, parse_duration
from host_tools.errors import UsageError
from host_tools.units import DEVICE_EPOCH, NL_PER_ML, clock_text, device_seconds, device_time, ml_text, offset_text

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_ALIASES = {"weekdays": DAYS[:5], "weekend": DAYS[5:], "all": DAYS}
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_FLEX_STEPS = 13
UTC_OFFSET_MIN, UTC_OFFSET_MAX = -12 * 60, 14 * 60

# the commands build() knows (argparse `command` values)
COMMANDS = ("program", "bolus", "prime", "refill", "clock")


# -- single fields ----------------------------------------------------------------------------

def whole_number(text: str | None, field: str, unit: str, allow_zero: bool = False) -> int:
    """A whole number of `unit` (e.g. 'mcg/day'), more than 0 unless allow_zero."""
    if text is None:
        raise UsageError(f"{field} is required ({unit})")
    t = str(text).strip()
    if not re.fullmatch(r"[0-9]+", t):
        raise UsageError(f"{field} must be a whole number of {unit}, got '{text}'")
    n = int(t)
    if n == 0 and not allow_zero:
        raise UsageError(f"{field} must be more than 0 {unit}, got '{text}'")
    return n


def seconds(text: str | None, field: str) -> int:
    """A therapy duration typed with its unit ('15m', '6h', '1h30m') -> whole seconds, > 0."""
    if text is None:
        raise UsageError(f"{field} is required (a duration with its unit, e.g. 15m or 6h)")
    ms = parse_duration(text, field)
    if ms % 1000:
        raise UsageError(f"{field} must be whole seconds, got '{text}' (the pump times therapy in seconds)")
    if ms <= 0:
        raise UsageError(f"{field} must be more than 0 seconds, got '{text}'")
    return ms // 1000


def minute_of_day(text: str | None, field: str) -> int:
    """Local time 'HH:MM' (00:00..23:59, two digits each) -> minutes after midnight."""
    m = re.fullmatch(r"(\d\d):(\d\d)", (text or "").strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise UsageError(f"{field} must be a local time HH:MM from 00:00 to 23:59, got '{text}'")
    return int(m[1]) * 60 + int(m[2])


def volume_nl(text: str | None, field: str, allow_zero: bool = True) -> int:
    """A volume in mL, as typed ('0.15', '20') -> whole nL, exactly (at most 6 decimals)."""
    if text is None:
        raise UsageError(f"{field} is required (mL)")
    t = str(text).strip()
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", t):
        try:
            special = not Decimal(t).is_finite()
        except (InvalidOperation, ValueError):
            special = False
        if special:
            raise UsageError(f"{field} must be a finite volume in mL, got '{text}'")
        raise UsageError(f"{field} must be a volume in mL written as a decimal number (e.g. 1.5), got '{text}'")
    ml = Decimal(t)
    if ml < 0:
        raise UsageError(f"{field} must not be negative, got '{text}'")
    nl = ml * NL_PER_ML
    if nl != nl.to_integral_value():
        raise UsageError(f"{field} {text}: volumes resolve to 1 nL (6 decimals in mL)")
    if nl == 0 and not allow_zero:
        raise UsageError(f"{field} must be more than 0 mL, got '{text}'")
    return int(nl)


def utc_offset_min(text: str) -> int:
    """'+HH:MM' / '-HH:MM' within -12:00..+14:00 -> minutes."""
    m = re.fullmatch(r"([+-])(\d\d):(\d\d)", text.strip())
    if not m or int(m[3]) > 59:
        raise UsageError(f"--utc-offset must be +HH:MM or -HH:MM (e.g. +01:00, -05:00), got '{text}'")
    minutes = int(m[2]) * 60 + int(m[3])
    minutes = -minutes if m[1] == "-" else minutes
    if not UTC_OFFSET_MIN <= minutes <= UTC_OFFSET_MAX:
        raise UsageError(f"--utc-offset must be within -12:00..+14:00, got '{text}'")
    return minutes


def clock_set_s(text: str) -> int:
    """An ISO 8601 date and time with its zone ('2024-03-10T14:30:00Z', '...+01:00') -> device seconds."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--set must be an ISO 8601 date and time with a zone, e.g. 2024-03-10T14:30:00Z, "
                         f"got '{text}'") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise UsageError(f"--set '{text}' has no time zone: add Z (UTC) or an offset such as +01:00; the pump "
                         f"clock runs on UTC and a local time without its offset is ambiguous")
    if when < DEVICE_EPOCH:
        raise UsageError(f"--set must be on or after {device_time(0)} (the pump's epoch), got '{text}'")
    return device_seconds(when)


# -- flex schedules ---------------------------------------------------------------------------

class FlexPlanAction(argparse.Action):
    """--day and --step share one ordered list, so steps belong to the --day before them.

    The namespace gets `flex_plan = [("day", "mon,tue"), ("step", "07:00=300"), ...]`.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        plan = list(getattr(namespace, self.dest, None) or [])
        plan.append(((option_string or "--step").lstrip("-"), values))
        setattr(namespace, self.dest, plan)


def day_names(text: str) -> list[str]:
    """'mon,tue' / 'weekdays' / 'weekend' / 'all' / 'monday' -> ['mon', 'tue', ...]; a day twice is refused."""
    days: list[str] = []
    for part in text.split(","):
        name = part.strip().lower()
        if name in DAY_ALIASES:
            found = list(DAY_ALIASES[name])
        elif name in DAYS:
            found = [name]
        elif name in _FULL_NAMES:
            found = [DAYS[_FULL_NAMES.index(name)]]
        else:
            raise UsageError(f"--day '{part.strip()}' is not a day: use mon, tue, wed, thu, fri, sat, sun, "
                             f"weekdays, weekend or all (comma-separated)")
        for d in found:
            if d in days:
                raise UsageError(f"day {d} is named twice in --day {text}")
            days.append(d)
    return days


def flex_step(text: str) -> tuple[int, int]:
    """'07:00=300' -> (420, 300)."""
    start, sep, dose = text.partition("=")
    if not sep:
        raise UsageError(f"--step must be HH:MM=MCG_PER_DAY (e.g. 07:00=300), got '{text}'")
    return (minute_of_day(start, f"--step {text}: the start"),
            whole_number(dose, f"--step {text}: the dose", "mcg/day"))


def _schedule(steps: list[tuple[str, tuple[int, int]]], where: str) -> list[list[int]]:
    """One day's steps, sorted by start; duplicate starts and more than 13 steps are refused."""
    if len(steps) > MAX_FLEX_STEPS:
        raise UsageError(f"at most {MAX_FLEX_STEPS} flex steps per day, got {len(steps)} for {where}")
    ordered = sorted(steps, key=lambda s: s[1][0])
    for (a_text, a), (b_text, b) in zip(ordered, ordered[1:]):
        if a[0] == b[0]:
            raise UsageError(f"two flex steps start at {clock_text(a[0])} for {where} ({a_text} and {b_text}): "
                             f"each step needs its own start time")
    return [[start, dose] for _, (start, dose) in ordered]


def flex_days(plan: list[tuple[str, str]] | None) -> dict[str, list[list[int]]]:
    """The ordered --day/--step list -> {"all": steps} or {"mon": steps, ..., "sun": steps}."""
    plan = plan or []
    if not any(kind == "step" for kind, _ in plan):
        raise UsageError("program flex needs at least one --step HH:MM=MCG_PER_DAY")
    if not any(kind == "day" for kind, _ in plan):
        return {"all": _schedule([(t, flex_step(t)) for _, t in plan], "every day")}
    if plan[0][0] == "step":
        raise UsageError(f"--step {plan[0][1]} comes before any --day: with --day, name the days first, "
                         f"then their steps (--day mon,tue --step 07:00=300 ...)")
    groups: list[tuple[str, list[str], list[tuple[str, tuple[int, int]]]]] = []
    named: dict[str, str] = {}
    for kind, text in plan:
        if kind == "day":
            days = day_names(text)
            for d in days:
                if d in named:
                    raise UsageError(f"day {d} is named twice (--day {named[d]} and --day {text}): "
                                     f"give each day its steps once")
                named[d] = text
            groups.append((text, days, []))
        else:
            groups[-1][2].append((text, flex_step(text)))
    for text, _, steps in groups:
        if not steps:
            raise UsageError(f"--day {text} has no --step after it")
    missing = [d for d in DAYS if d not in named]
    if missing:
        raise UsageError(f"with --day, every day needs its steps: missing {', '.join(missing)} "
                         f"(days: mon..sun, weekdays, weekend, all)")
    by_day: dict[str, list[list[int]]] = {}
    for _, days, steps in groups:
        schedule = _schedule(steps, ", ".join(days))
        for d in days:
            by_day[d] = schedule
    if all(by_day[d] == by_day["mon"] for d in DAYS):
        return {"all": by_day["mon"]}
    return {d: by_day[d] for d in DAYS}


# -- whole commands ---------------------------------------------------------------------------

def _program(args: argparse.Namespace) -> dict[str, Any]:
    mode = args.program_mode
    if mode == "continuous":
        return {"mode": "continuous", "dose_mcg": whole_number(args.dose, "--dose", "mcg/day")}
    if mode == "flex":
        return {"mode": "flex", "days": flex_days(args.flex_plan)}
    if mode == "periodic":
        every_s, over_s = seconds(args.every, "--every"), seconds(args.over, "--over")
        req = {
            "mode": "periodic",
            "basal_mcg": whole_number(args.basal, "--basal", "mcg/day"),
            "bolus_mcg": whole_number(args.bolus, "--bolus", "mcg"),
            "every_s": every_s,
            "over_s": over_s,
            "start_min": None if args.start is None else minute_of_day(args.start, "--start"),
        }
        if over_s >= every_s:
            raise UsageError(f"--over ({args.over}) must be shorter than --every ({args.every}): "
                             f"each bolus ends before the next begins")
        return req
    if mode == "stop":
        reason = (args.reason or "").strip()
        if not reason:
            raise UsageError("program stop needs --reason TEXT: stopping baclofen abruptly risks withdrawal, "
                             "so every stop is logged with its reason")
        return {"mode": "stop", "reason": reason}
    raise UsageError(f"unknown program mode '{mode}': continuous, flex, periodic or stop")


def build(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The parsed command line of a therapy command -> (device command, its args in device units)."""
    command = args.command
    if command == "program":
        return "program", _program(args)
    if command == "bolus":
        return "bolus", {"dose_mcg": whole_number(args.dose, "--dose", "mcg"),
                         "over_s": seconds(args.over, "--over")}
    if command == "prime":
        return "prime", {"catheter_nl": volume_nl(args.catheter_volume, "--catheter-volume")}
    if command == "refill":
        return "refill", {"removed_nl": volume_nl(args.removed, "--removed"),
                          "added_nl": volume_nl(args.added, "--added", allow_zero=False),
                          "concentration": whole_number(args.concentration, "--concentration", "mcg/mL")}
    if command == "clock":
        req: dict[str, Any] = {}
        if args.set is not None:
            req["set_s"] = clock_set_s(args.set)
        if args.utc_offset is not None:
            req["utc_offset_min"] = utc_offset_min(args.utc_offset)
        return "clock", req
    raise UsageError(f"'{command}' is not a therapy command")


def describe(cmd: str, req: dict[str, Any]) -> str:
    """One line (or a few) saying, in user units, what a request asks for."""
    def dur(s: int) -> str:
        return format_duration(s * 1000)

    def steps(schedule: list[list[int]]) -> str:
        return ", ".join(f"{clock_text(start)} {dose}" for start, dose in schedule) + " mcg/day"

    if cmd == "program":
        mode = req.get("mode")
        if mode == "continuous":
            return f"program continuous: {req['dose_mcg']} mcg/day"
        if mode == "flex":
            days = req["days"]
            if "all" in days:
                return f"program flex, every day: {steps(days['all'])}"
            return "program flex, day by day:\n" + "\n".join(f"  {d}: {steps(days[d])}" for d in DAYS if d in days)
        if mode == "periodic":
            start = "now" if req["start_min"] is None else f"at {clock_text(req['start_min'])}"
            return (f"program periodic: basal {req['basal_mcg']} mcg/day, bolus {req['bolus_mcg']} mcg "
                    f"every {dur(req['every_s'])} over {dur(req['over_s'])}, first bolus {start}")
        if mode == "stop":
            return f"program stop (reason: {req['reason']})"
    if cmd == "bolus":
        return f"bolus: {req['dose_mcg']} mcg over {dur(req['over_s'])}"
    if cmd == "prime":
        return f"prime: catheter volume {ml_text(req['catheter_nl'])} mL (plus the pump tubing)"
    if cmd == "refill":
        return (f"refill: removed {ml_text(req['removed_nl'])} mL, added {ml_text(req['added_nl'])} mL "
                f"at {req['concentration']} mcg/mL")
    if cmd == "clock":
        parts = []
        if "set_s" in req:
            parts.append(f"set to {device_time(req['set_s'])}")
        if "utc_offset_min" in req:
            parts.append(f"UTC offset {offset_text(req['utc_offset_min'])}")
        return "clock: " + (", ".join(parts) if parts else "read")
    return f"{cmd} {json.dumps(req, separators=(',', ':'))}"
