"""The scenario schema as data, and the validator that checks a scenario against it before it runs.

A scenario file (TOML, or JSON with the same structure) has top-level keys TOP, a [pump] table with
keys PUMP, and a list of [[step]] tables. Each step has exactly one action (a key of ACTIONS) and
may carry modifiers (MODIFIERS). docs/hil.md documents every key (a test checks it names them all).
Errors name the file, the step number (1-based) and the field, with what was expected.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable

from hil import quantities as q
from host_tools.alarm_words import PRIORITY as ALARM_PRIORITY
from host_tools.requests import DAY_ALIASES, DAYS


class SchemaError(ValueError):
    """A scenario that does not match the schema: '<file>: step N, field F: problem'."""

    def __init__(self, file: str, step: int | None, field: str, problem: str):
        self.file, self.step, self.field, self.problem = file, step, field, problem
        where = f"step {step}, field {field}" if step is not None else f"field {field}"
        super().__init__(f"{file}: {where}: {problem}")


class _Bad(ValueError):
    """Raised inside a field parser: the field path (relative) and the problem."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field


# -- field kinds --------------------------------------------------------------------------------

def text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise q.QuantityError(f"expected text, got {v!r}")
    return v.strip()


def flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise q.QuantityError(f"expected true or false, got {v!r}")
    return v


def count(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise q.QuantityError(f"expected a whole number (no unit), got {v!r}")
    return v


def choice(*options: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if v not in options:
            raise q.QuantityError(f"expected one of {', '.join(options)}, got {v!r}{_did_you_mean(v, options)}")
        return v
    return parse


def utc_offset(v: Any) -> int:
    from host_tools.errors import UsageError
    from host_tools.requests import utc_offset_min
    try:
        return utc_offset_min(str(v))
    except UsageError:
        raise q.QuantityError(f"expected a UTC offset +HH:MM or -HH:MM (e.g. \"+01:00\"), got {v!r}") from None


def list_of(item: Callable[[Any], Any], allow_empty: bool = True) -> Callable[[Any], list]:
    def parse(v: Any) -> list:
        if not isinstance(v, list) or (not v and not allow_empty):
            raise q.QuantityError(f"expected a list{'' if allow_empty else ' with at least one entry'}, got {v!r}")
        out = []
        for n, x in enumerate(v, 1):
            try:
                out.append(item(x))
            except q.QuantityError as e:
                raise _Bad(f"[{n}]", str(e)) from None
        return out
    return parse


def tolerant(parse: Callable[[Any], int]) -> Callable[[Any], tuple[int, int]]:
    return lambda v: q.with_tolerance(v, parse)


def moment_tol(v: Any) -> tuple[Any, int]:
    """'day 18 08:00 ± 2h' -> (moment, tolerance ms)."""
    if not isinstance(v, str):
        raise q.QuantityError(f"expected a time as text (\"day N HH:MM ± 1h\"), got {v!r}")
    when, _, tol = v.replace("+-", "±").partition("±")
    return q.moment(when), q.duration(tol) if tol.strip() else 0


def strokes(v: Any) -> tuple[int, int]:
    """4000 or '4000 ± 1' (STEP pulses the fixture counted)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return count(v), 0
    m = re.fullmatch(r"\s*(\d+)\s*(?:(?:±|\+-)\s*(\d+))?\s*", str(v))
    if not m:
        raise q.QuantityError(f"expected a stroke count, e.g. 4000 or \"4000 ± 1\", got {v!r}")
    return int(m[1]), int(m[2] or 0)


def table(fields: dict[str, Callable[[Any], Any]], required: tuple[str, ...] = (), what: str = "table"
          ) -> Callable[[Any], dict]:
    """A table with these keys (each parsed by its kind); unknown keys are errors with a suggestion."""
    def parse(v: Any) -> dict:
        if not isinstance(v, dict):
            raise q.QuantityError(f"expected a {what} with keys {', '.join(fields)}, got {v!r}")
        out = {}
        for key, raw in v.items():
            if key not in fields:
                raise _Bad(key, f"unknown key{_did_you_mean(key, fields)} (allowed: {', '.join(fields)})")
            try:
                out[key] = fields[key](raw)
            except _Bad as e:
                raise _Bad(f"{key}{'' if e.field.startswith('[') else '.'}{e.field}", str(e)) from None
            except q.QuantityError as e:
                raise _Bad(key, str(e)) from None
        for key in required:
            if key not in out:
                raise _Bad(key, f"missing (required in a {what})")
        return out
    return parse


def _did_you_mean(word: Any, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def alarm(v: Any) -> dict:
    if isinstance(v, str):
        return {"code": ALARM_CODE(v)}
    return table({"code": ALARM_CODE, "priority": choice("critical", "non_critical"), "acknowledged": flag},
                 ("code",), "alarm")(v)


def log_entry(v: Any) -> tuple[str, str]:
    """'alarm_raised: motor_stall' -> ('alarm_raised', 'motor_stall'): the entry's sentence (what
    `itbpump log` shows) or its codes must contain it."""
    event, _, fragment = text(v).partition(":")
    return event.strip(), fragment.strip()


ALARM_CODE = choice(*ALARM_PRIORITY)  # the firmware's alarm codes (alarms.PRIORITY, read as data)
FLEX_DAYS = ("all", "weekdays", "weekend", "mon", "tue", "wed", "thu", "fri", "sat", "sun")

# -- the schema -----------------------------------------------------------------------------------

PUMP = {
    "start": q.moment,            # the pump's local time when the scenario begins (ISO 8601 local)
    "utc_offset": utc_offset,     # its UTC offset then
    "reservoir": choice("20 mL", "40 mL"),
}

FAULTS = {
    # kind -> its options; what each needs of a back end is FAULT_NEEDS
    "motor_stall": {"every": q.duration},          # permanent; with every: intermittent
    "battery_eri": {}, "battery_eos": {}, "battery_fault": {},
    "battery": {"voltage": q.voltage},
    "power_cut": {"off": q.duration, "mid_write": count},  # off: power returns after it; mid_write: the Nth write
    "corrupt_state": {"copy": choice("a", "b", "both")},    # found by the next boot
    "clock_loss": {},                                       # the RTC restarts at the next boot
    "link_noise": {"bytes": count, "pattern": choice("garbage", "partial_frame")},
}
CLEARABLE = ("motor_stall", "battery", "link_noise")  # the others are momentary (power_cut's off is its end)


def fault(v: Any) -> dict:
    if isinstance(v, str):
        v = {"kind": v}
    if not isinstance(v, dict) or "kind" not in v:
        raise q.QuantityError(f"expected a fault name or a table with 'kind', got {v!r}")
    kind = v["kind"]
    if kind not in FAULTS:
        raise _Bad("kind", f"unknown fault {kind!r}{_did_you_mean(kind, FAULTS)} (faults: {', '.join(FAULTS)})")
    return {"kind": kind, **table(dict(FAULTS[kind], kind=text), (), f"{kind} fault")(v)}


def clear(v: Any) -> str:
    name = text(v)
    name = "battery" if name.startswith("battery") else name
    if name not in CLEARABLE:
        raise q.QuantityError(f"{v!r} cannot be cleared{_did_you_mean(v, CLEARABLE)}: clear one of "
                              f"{', '.join(CLEARABLE)} (a power cut ends with its 'off' time; a corrupted copy "
                              f"or clock loss is found by the next boot)")
    return name


_FLEX_STEPS = list_of(q.flex_step, allow_empty=False)
ACTIONS: dict[str, Callable[[Any], Any]] = {
    "advance": q.duration,
    "until": q.moment,
    "refill": table({"removed": q.volume, "added": q.volume, "concentration": q.concentration},
                    ("removed", "added", "concentration"), "refill"),
    "program": table({"mode": choice("continuous", "flex", "periodic", "stop"), "dose": q.daily_dose,
                      "steps": _FLEX_STEPS, "days": table({d: _FLEX_STEPS for d in FLEX_DAYS}, (), "days table"),
                      "basal": q.daily_dose, "bolus": q.dose, "every": q.seconds, "over": q.seconds,
                      "start": q.clock_time, "reason": text, "override": text}, ("mode",), "program"),
    "bolus": table({"dose": q.dose, "over": q.seconds}, ("dose", "over"), "bolus"),
    "prime": table({"catheter": q.volume}, ("catheter",), "prime"),
    "limits": table({"origin": choice("spinal", "cerebral", "pediatric"), "titration": q.percent,
                     "low_reservoir": q.volume, "bolus_cap": q.dose, "initial_cap": q.daily_dose,
                     "hard_max": q.daily_dose}, (), "limits"),
    "ptm": table({"enable": flag, "dose": q.dose, "over": q.seconds, "max_per_day": count,
                  "lockout": q.seconds, "override": text}, ("enable",), "ptm"),
    "patient_bolus": flag,
    "clock": table({"utc_offset": utc_offset, "set": q.moment}, (), "clock"),
    "acknowledge": flag,
    "alarm_test": flag,
    "fault": fault,
    "clear": clear,
    "expect": lambda v: expect_table(v),
}
# two-phase actions (prepared, reviewed, committed): they may carry commit = false and refused
TWO_PHASE = ("refill", "program", "bolus", "prime", "ptm")
MODIFIERS: dict[str, Callable[[Any], Any]] = {
    "at": q.moment,       # move the clock to this local time first
    "note": text,         # what the step is for (shown in the report)
    "refused": text,      # the device must refuse, naming this limit (or error); nothing changes
    "commit": flag,       # false: prepare only, then the session ends (incomplete programming)
}

EXPECTATIONS: dict[str, Callable[[Any], Any]] = {
    "state": text, "mode": choice("stopped", "continuous", "flex", "periodic"),
    "daily_dose": q.daily_dose, "rate": q.rate, "concentration": q.concentration,
    "reservoir": tolerant(q.volume), "delivered": tolerant(q.volume), "primed": tolerant(q.volume),
    "strokes": strokes,
    "alarms": list_of(alarm), "tones": choice("critical", "non_critical", "none", "any"),
    "log": list_of(log_entry), "no_log": list_of(log_entry),
    "review": table({"daily_dose": q.daily_dose, "warning": text, "change": q.percent,
                     "override": text}, (), "review"),
    "alarm_date": moment_tol, "refill_date": moment_tol, "clock": moment_tol,
    "bridge": table({"dead_volume": q.volume, "pushed": tolerant(q.volume), "old_concentration": q.concentration},
                    (), "bridge"),
    "bolus_delivered": tolerant(q.volume),
    "delivered_vs_programmed": q.volume_or_strokes,
    "motor": choice("on", "off"),
    "ticks_ms": count,
}
_EXPECT_TABLE = table(EXPECTATIONS, (), "expect table")


def expect_table(v: Any) -> dict:
    out = _EXPECT_TABLE(v)
    if not out:
        raise q.QuantityError(f"an expect table needs at least one of {', '.join(EXPECTATIONS)}")
    return out

# the capabilities a back end may offer (hil/rig.py Capabilities): a scenario needs some of them.
# Its clock (docs/hil.md "Back ends"): a scenario that moves time (advance, until, at) needs
# fast_forward (days of device time in minutes of wall time); one that checks exact device times
# (ticks_ms) needs lockstep_clock (time moves only when the rig says; a lockstep clock also
# fast-forwards). A back end with neither runs in real time and skips scenarios that move time.
CLOCKS = ("lockstep_clock", "fast_forward")
FAULT_KINDS = frozenset({
    "motor_stall_permanent", "motor_stall_intermittent", "battery_eri", "battery_eos", "battery_fault",
    "battery", "power_cut", "power_cut_mid_write", "corrupt_state", "clock_loss", "link_noise"})
PINS = frozenset({"step_count", "rotor", "buzzer", "motor_enable", "battery_sense"})
CAPABILITIES = (*CLOCKS, *sorted(FAULT_KINDS), *sorted(PINS))

TOP = {"name": text, "proves": text, "incident": text, "requires": list_of(choice(*CAPABILITIES)), "pump": table(PUMP, (), "pump"),
       "step": None}

# what a back end must offer for an expectation (hil/rig.py Capabilities): a pin, or exact time
EXPECT_NEEDS = {"strokes": "step_count", "delivered": "step_count", "primed": "step_count",
                "tones": "buzzer", "motor": "motor_enable",
                "ticks_ms": "lockstep_clock"}  # an exact tick count: no time may pass while the host talks


def fault_need(f: dict) -> str:
    """The capability name of a fault step: 'motor_stall_intermittent', 'power_cut_mid_write', ..."""
    kind = f["kind"]
    if kind == "motor_stall":
        return "motor_stall_intermittent" if "every" in f else "motor_stall_permanent"
    if kind == "power_cut" and "mid_write" in f:
        return "power_cut_mid_write"
    return kind


def validate(data: Any, file: str) -> dict:
    """A checked scenario: {'name', 'proves', 'incident', 'pump', 'steps', 'needs'}; SchemaError otherwise."""
    if not isinstance(data, dict):
        raise SchemaError(file, None, "(top)", "a scenario is a table with 'name', 'proves', [pump] and [[step]]")
    out: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in TOP:
            raise SchemaError(file, None, key, f"unknown key{_did_you_mean(key, TOP)} (allowed: {', '.join(TOP)})")
        if key == "step":
            continue
        try:
            out[key] = TOP[key](raw)  # type: ignore[misc]
        except _Bad as e:
            raise SchemaError(file, None, f"{key}.{e.field}", str(e)) from None
        except q.QuantityError as e:
            raise SchemaError(file, None, key, str(e)) from None
    raw_steps = data.get("step")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise SchemaError(file, None, "step", "a scenario needs at least one [[step]]")
    steps = [_step(raw, i, file) for i, raw in enumerate(raw_steps, 1)]
    needs = set(out.get("requires", []))
    for s in steps:
        if s["action"] in ("advance", "until") or "at" in s:
            needs.add("fast_forward")  # hours to days of device time, in minutes of wall time
        if s["action"] == "fault":
            needs.add(fault_need(s["arg"]))
        if s["action"] == "expect":
            needs.update(EXPECT_NEEDS[k] for k in s["arg"] if k in EXPECT_NEEDS)
    out["steps"] = steps
    out["needs"] = sorted(needs)
    out.setdefault("pump", {})
    return out


def _step(raw: Any, i: int, file: str) -> dict:
    if not isinstance(raw, dict):
        raise SchemaError(file, i, "(step)", f"a step is a table with one action, got {raw!r}")
    actions = [k for k in raw if k in ACTIONS]
    for key in raw:
        if key not in ACTIONS and key not in MODIFIERS:
            raise SchemaError(file, i, key, f"unknown key{_did_you_mean(key, [*ACTIONS, *MODIFIERS])} "
                                            f"(actions: {', '.join(ACTIONS)}; modifiers: {', '.join(MODIFIERS)})")
    if len(actions) != 1:
        raise SchemaError(file, i, "(step)", f"a step has exactly one action ({', '.join(ACTIONS)}), "
                                             f"got {', '.join(actions) or 'none'}")
    action = actions[0]
    step: dict[str, Any] = {"i": i, "action": action, "raw": raw}
    for key, raw_value in raw.items():
        try:
            value = (ACTIONS if key == action else MODIFIERS)[key](raw_value)
        except _Bad as e:
            raise SchemaError(file, i, f"{key}.{e.field}", str(e)) from None
        except q.QuantityError as e:
            raise SchemaError(file, i, key, str(e)) from None
        step["arg" if key == action else key] = value
    if "refused" in step and action not in TWO_PHASE + ("limits", "patient_bolus"):
        raise SchemaError(file, i, "refused", f"only a request can be refused ({', '.join(TWO_PHASE)}, "
                                              f"limits, patient_bolus)")
    if "commit" in step and action not in TWO_PHASE:
        raise SchemaError(file, i, "commit", f"only a two-phase step ({', '.join(TWO_PHASE)}) can be left uncommitted")
    if action == "program":
        _check_program(step["arg"], file, i)
    return step


_MODE_FIELDS = {"continuous": ({"dose"}, set()), "flex": (set(), {"steps", "days"}),
                "periodic": ({"basal", "bolus", "every", "over"}, {"start"}), "stop": ({"reason"}, set())}


def _check_program(p: dict, file: str, i: int) -> None:
    need, may = _MODE_FIELDS[p["mode"]]
    for key in p:
        if key not in need | may | {"mode", "override"}:
            raise SchemaError(file, i, f"program.{key}", f"not a field of {p['mode']} programs "
                                                         f"(fields: {', '.join(sorted(need | may))})")
    missing = need - set(p)
    if p["mode"] == "flex" and not ({"steps", "days"} & set(p)):
        missing = {"steps"}
    if missing:
        raise SchemaError(file, i, f"program.{sorted(missing)[0]}", f"missing (required for {p['mode']} programs)")
    if "days" in p:
        named: list[str] = []
        for name in p["days"]:
            named += DAY_ALIASES.get(name, (name,))
        twice = sorted({d for d in named if named.count(d) > 1})
        left = [d for d in DAYS if d not in named]
        if twice or left:
            raise SchemaError(file, i, "program.days", "every day needs its steps exactly once: "
                              + (f"{', '.join(twice)} named twice" if twice else f"missing {', '.join(left)}"))
