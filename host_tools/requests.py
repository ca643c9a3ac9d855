"""What the user typed -> the device request to send: parsing, validation and unit conversion.

Pure functions, no I/O: `build(args)` takes the argparse namespace of a therapy command and
returns `(cmd, args)` for `PumpClient.request(cmd, **args)`, in device units (integer mcg, nL,
seconds, minutes after local midnight, device seconds). Bad input raises `UsageError` naming the
field, the problem and the limit. The clinical limits (titration, ceiling, drug library, bolus
cap, reservoir capacity) are the device's to check; this module only refuses what cannot be a
well-formed request, and the ranges the spec fixes for every pump (the titration limit within its
profile's range, the low-reservoir threshold's range, a reason's length, flex steps per day). Those
are read from the firmware's own definitions (host_tools/pump_facts.py), never copied here.

Programming requests (`program`, `bolus`, `prime`, `refill`, `ptm` with args) are two-phase on the
device (`host_tools.client.is_prepare`): the CLI prepares them, shows the review, then commits.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from host_tools.durations import duration_text, parse_duration
from host_tools.errors import UsageError
from host_tools.pump_facts import fact, ranges_text, titration_range
from host_tools.units import DEVICE_EPOCH, NL_PER_ML, clock_text, device_seconds, device_time, ml_exact, offset_text

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_ALIASES = {"weekdays": DAYS[:5], "weekend": DAYS[5:], "all": DAYS}
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_FLEX_STEPS: int = fact("MAX_FLEX_STEPS")  # a flex day's steps at most (firmware dose.py)
# the UTC offset's range, minutes: the device's (clock_cmd.py), checked by tests/test_one_place.py
UTC_OFFSET_MIN, UTC_OFFSET_MAX = -12 * 60, 14 * 60

# the commands build() knows (argparse `command` values)
COMMANDS = ("program", "bolus", "prime", "refill", "clock", "limits", "ptm", "patient-bolus")
REASON_MAX: int = fact("_REASON_CHARS")  # characters of an override or stop reason (firmware checks.py)
REASON_BYTES: int = fact("REASON_BYTES")  # ... and bytes of its UTF-8: the pump's event log keeps it whole
# titration limit (% over the 24 h minimum) the clinician may set, by patient profile (spec §4; limits.PROFILES)
TITRATION_RANGE = titration_range()
PROFILES = tuple(TITRATION_RANGE)
TITRATION_RANGES_TEXT = ranges_text(TITRATION_RANGE)  # 'spinal 10..30 %, cerebral and pediatric 5..15 %'
# the low-reservoir threshold's range (spec §5; firmware limits_cmd.py)
LOW_RESERVOIR_NL: tuple[int, int] = (fact("LOW_MIN_NL"), fact("LOW_MAX_NL"))
PTM_WARNING = "patient boluses are not indicated for baclofen on some pumps"


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


def reason(text: str | None, field: str) -> str:
    """An override or stop reason: 1..REASON_MAX characters once surrounding blanks are dropped."""
    t = (text or "").strip()
    if not t:
        raise UsageError(f"{field} needs a reason: 1..{REASON_MAX} characters, logged with the change")
    if len(t) > REASON_MAX:
        raise UsageError(f"{field} must be at most {REASON_MAX} characters (the pump logs it), got {len(t)}")
    if len(t.encode()) > REASON_BYTES:
        raise UsageError(f"{field} is too long for the pump's event log: at most {REASON_BYTES} bytes of text "
                         f"(accented letters and symbols take 2 to 4), got {len(t.encode())}; shorten it")
    return t


def whole_in_range(text: str | None, field: str, unit: str, lo: int, hi: int, why: str) -> int:
    """A whole number of `unit` within lo..hi; `why` says whose range it is."""
    n = whole_number(text, field, unit, allow_zero=True)
    if not lo <= n <= hi:
        raise UsageError(f"{field} must be {lo}..{hi} {unit} ({why}), got '{text}'")
    return n


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
        raise UsageError(f"--utc-offset must be within {offset_text(UTC_OFFSET_MIN)}..{offset_text(UTC_OFFSET_MAX)}, "
                         f"got '{text}'")
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
    """One day's steps, sorted by start; duplicate starts and more than MAX_FLEX_STEPS are refused."""
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
    req = _program_mode(args, mode)
    if mode != "stop" and getattr(args, "override", None) is not None:
        req["override"] = reason(args.override, "--override")
    return req


def _program_mode(args: argparse.Namespace, mode: str) -> dict[str, Any]:
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
        if not (args.reason or "").strip():
            raise UsageError("program stop needs --reason TEXT: stopping baclofen abruptly risks withdrawal, "
                             "so every stop is logged with its reason")
        return {"mode": "stop", "reason": reason(args.reason, "--reason")}
    raise UsageError(f"unknown program mode '{mode}': continuous, flex, periodic or stop")


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    """`limits` options -> the settings to change ({} reads them). Host checks: whole numbers, the
    titration range of the profile (of --origin when given, else any profile's), the
    low-reservoir threshold's range; the device checks the rest (e.g. caps against the ceiling)."""
    req: dict[str, Any] = {}
    if args.origin is not None:
        profile = str(args.origin).strip().lower()
        if profile not in TITRATION_RANGE:
            raise UsageError(f"--origin must be one of {', '.join(PROFILES)}, got '{args.origin}'")
        req["profile"] = profile
    if args.titration is not None:
        if "profile" in req:
            lo, hi = TITRATION_RANGE[req["profile"]]
            why = f"the {req['profile']} profile's range"
        else:
            lo, hi = min(r[0] for r in TITRATION_RANGE.values()), max(r[1] for r in TITRATION_RANGE.values())
            why = TITRATION_RANGES_TEXT
        req["titration_pct"] = whole_in_range(args.titration, "--titration", "%", lo, hi, why)
    if args.low_reservoir is not None:
        nl = volume_nl(args.low_reservoir, "--low-reservoir")
        lo, hi = LOW_RESERVOIR_NL
        if not lo <= nl <= hi:
            raise UsageError(f"--low-reservoir must be {ml_exact(lo)}..{ml_exact(hi)} mL (the low-reservoir alarm "
                             f"threshold's range), got '{args.low_reservoir}'")
        req["low_reservoir_nl"] = nl
    for attr, field, key in (("bolus_cap", "--bolus-cap", "bolus_cap_mcg"),
                             ("initial_cap", "--initial-cap", "initial_cap_mcg"),
                             ("hard_max", "--hard-max", "hard_max_mcg")):
        value = getattr(args, attr)
        if value is not None:
            unit = "mcg" if attr == "bolus_cap" else "mcg/day"
            req[key] = whole_number(value, field, unit)
    return req


PTM_FIELDS = (("dose", "--dose"), ("over", "--over"), ("max_per_day", "--max-per-day"), ("lockout", "--lockout"))


def _ptm(args: argparse.Namespace) -> dict[str, Any]:
    """`ptm` options -> {} (read), {"enable": False}, or the patient-bolus settings to enable."""
    given = [flag for attr, flag in PTM_FIELDS if getattr(args, attr) is not None]
    if args.override is not None and not args.enable:
        raise UsageError("--override applies to ptm --enable only")
    if args.disable:
        if given:
            raise UsageError(f"ptm --disable takes no {', '.join(given)}")
        return {"enable": False}
    if not args.enable:
        if given:
            raise UsageError(f"{', '.join(given)} need{'s' if len(given) == 1 else ''} --enable "
                             f"(ptm --enable --dose MCG --over DURATION --max-per-day N --lockout DURATION)")
        return {}
    missing = [flag for attr, flag in PTM_FIELDS if getattr(args, attr) is None]
    if missing:
        raise UsageError(f"ptm --enable needs {', '.join(missing)} "
                         f"(--dose MCG --over DURATION --max-per-day N --lockout DURATION)")
    req: dict[str, Any] = {
        "enable": True,
        "dose_mcg": whole_number(args.dose, "--dose", "mcg"),
        "over_s": seconds(args.over, "--over"),
        "max_per_day": whole_number(args.max_per_day, "--max-per-day", "patient boluses a day"),
        "lockout_s": seconds(args.lockout, "--lockout"),
    }
    if req["over_s"] > req["lockout_s"]:
        raise UsageError(f"--over ({args.over}) must not be longer than --lockout ({args.lockout}): "
                         f"a patient bolus ends before the next may start")
    if args.override is not None:
        req["override"] = reason(args.override, "--override")
    return req


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
    if command == "limits":
        return "limits", _limits(args)
    if command == "ptm":
        return "ptm", _ptm(args)
    if command == "patient-bolus":
        return "patient_bolus", {}
    raise UsageError(f"'{command}' is not a therapy command")


def describe(cmd: str, req: dict[str, Any]) -> str:
    """One line (or a few) saying, in user units, what a request asks for."""
    def dur(s: int) -> str:
        return duration_text(s)

    def steps(schedule: list[list[int]]) -> str:
        return ", ".join(f"{clock_text(start)} {dose}" for start, dose in schedule) + " mcg/day"

    override = f" (override: {req['override']})" if req.get("override") else ""
    if cmd == "program":
        mode = req.get("mode")
        if mode == "continuous":
            return f"program continuous: {req['dose_mcg']} mcg/day{override}"
        if mode == "flex":
            days = req["days"]
            if "all" in days:
                return f"program flex, every day: {steps(days['all'])}{override}"
            return (f"program flex, day by day{override}:\n"
                    + "\n".join(f"  {d}: {steps(days[d])}" for d in DAYS if d in days))
        if mode == "periodic":
            start = "now" if req["start_min"] is None else f"at {clock_text(req['start_min'])}"
            return (f"program periodic: basal {req['basal_mcg']} mcg/day, bolus {req['bolus_mcg']} mcg "
                    f"every {dur(req['every_s'])} over {dur(req['over_s'])}, first bolus {start}{override}")
        if mode == "stop":
            return f"program stop (reason: {req['reason']})"
    if cmd == "bolus":
        return f"bolus: {req['dose_mcg']} mcg over {dur(req['over_s'])}"
    if cmd == "prime":
        return f"prime: catheter volume {ml_exact(req['catheter_nl'])} mL (plus the pump tubing)"
    if cmd == "refill":
        return (f"refill: removed {ml_exact(req['removed_nl'])} mL, added {ml_exact(req['added_nl'])} mL "
                f"at {req['concentration']} mcg/mL")
    if cmd == "clock":
        parts = []
        if "set_s" in req:
            parts.append(f"set to {device_time(req['set_s'])}")
        if "utc_offset_min" in req:
            parts.append(f"UTC offset {offset_text(req['utc_offset_min'])}")
        return "clock: " + (", ".join(parts) if parts else "read")
    if cmd == "ptm":
        if not req:
            return "patient bolus (PTM): read"
        if not req["enable"]:
            return "patient bolus (PTM): disable"
        return (f"patient bolus (PTM): enable, {req['dose_mcg']} mcg over {dur(req['over_s'])}, at most "
                f"{req['max_per_day']} a day, lockout {dur(req['lockout_s'])}{override}")
    if cmd == "limits":
        if not req:
            return "limits: read"
        names = {"profile": "origin", "titration_pct": "titration", "low_reservoir_nl": "low reservoir",
                 "bolus_cap_mcg": "bolus cap", "initial_cap_mcg": "initial cap", "hard_max_mcg": "hard maximum"}
        units = {"titration_pct": " %", "low_reservoir_nl": " mL", "bolus_cap_mcg": " mcg",
                 "initial_cap_mcg": " mcg/day", "hard_max_mcg": " mcg/day"}
        parts = [f"{names.get(k, k)} {ml_exact(v) if k.endswith('_nl') else v}{units.get(k, '')}"
                 for k, v in req.items()]
        return "limits: set " + ", ".join(parts)
    if cmd == "patient_bolus":
        return "patient bolus"
    return f"{cmd} {json.dumps(req, separators=(',', ':'))}"
