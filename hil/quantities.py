"""Clinical quantities as a test engineer writes them -> device units, or an error naming the problem.

Every value carries its unit: '20 mL', '500 mcg/day', '50 mcg', '500 mcg/mL', '6h', '30 min',
'20 %', '2.65 V'. A tolerance follows '±' (or '+-'): '7 mL ± 1 stroke', '13 mL ± 0.01 mL'.
Clock times are '22:00'; points in time are 'day 2 22:00' (day 1 is the scenario's first day) or an
ISO 8601 local time '2026-03-29T22:00'. The unit conversions are host_tools.requests' (one place).
"""

from __future__ import annotations

import re
from datetime import datetime

from host_tools.durations import parse_duration
from host_tools.errors import UsageError
from host_tools.pump_facts import stroke_nl
from host_tools.requests import minute_of_day, volume_nl

STROKE_NL = stroke_nl()  # the pump's stroke volume (firmware dose.py, sim default): the unit of '± 1 stroke'


class QuantityError(ValueError):
    """A value that is not the quantity a field needs: the text says what was expected."""


_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION_WORDS = {"min": "m", "mins": "m", "minute": "m", "minutes": "m", "hour": "h", "hours": "h",
                   "hr": "h", "day": "d", "days": "d", "sec": "s", "second": "s", "seconds": "s"}


def _split(text: object, unit_hint: str) -> tuple[str, str]:
    """'500 mcg/day' -> ('500', 'mcg/day'); a bare number or a non-string is refused."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise QuantityError(f"expected a value in {unit_hint} written as text (e.g. \"{_example(unit_hint)}\"), "
                            f"got {type(text).__name__} {text!r}")
    t = str(text).strip()
    m = re.fullmatch(rf"({_NUMBER})\s*(.*)", t)
    if not m:
        raise QuantityError(f"'{text}' is not a number with a unit ({unit_hint}, e.g. \"{_example(unit_hint)}\")")
    if not m[2]:
        raise QuantityError(f"'{text}' has no unit: write it in {unit_hint} (e.g. \"{_example(unit_hint)}\")")
    return m[1], m[2].strip()


def _example(unit: str) -> str:
    return {"mL": "2.5 mL", "mcg/day": "300 mcg/day", "mcg": "50 mcg", "mcg/mL": "500 mcg/mL",
            "%": "20 %", "V": "2.65 V", "mL/day": "1 mL/day"}.get(unit, "6h")


def _want(text: object, unit: str, allowed: tuple[str, ...]) -> str:
    number, got = _split(text, unit)
    if got not in allowed:
        raise QuantityError(f"'{text}': the unit must be {unit}, got '{got}'")
    return number


def volume(text: object) -> int:
    """'0.25 mL' -> nL (exact to 1 nL)."""
    number = _want(text, "mL", ("mL", "ml"))
    try:
        return volume_nl(number, "volume")
    except UsageError as e:
        raise QuantityError(f"'{text}': {e}") from None


def whole(text: object, unit: str, aliases: tuple[str, ...] = ()) -> int:
    """'500 mcg/day' (unit 'mcg/day') -> 500; whole numbers only (the device's resolution)."""
    number = _want(text, unit, (unit, *aliases))
    if not re.fullmatch(r"\d+", number):
        raise QuantityError(f"'{text}' must be a whole number of {unit}")
    return int(number)


def daily_dose(text: object) -> int:
    return whole(text, "mcg/day")


def dose(text: object) -> int:
    return whole(text, "mcg")


def concentration(text: object) -> int:
    return whole(text, "mcg/mL", ("mcg/ml",))


def percent(text: object) -> int:
    return whole(text, "%")


def rate(text: object) -> int:
    """'1 mL/day' -> nL/day."""
    number = _want(text, "mL/day", ("mL/day", "ml/day"))
    return volume(f"{number} mL")


def voltage(text: object) -> int:
    """'2.65 V' or '2650 mV' -> mV."""
    number, unit = _split(text, "V")
    if unit == "mV" and re.fullmatch(r"\d+", number):
        return int(number)
    if unit == "V":
        return round(float(number) * 1000)
    raise QuantityError(f"'{text}': the unit must be V or mV, got '{unit}'")


def duration(text: object) -> int:
    """'6h', '30 min', '1h30m', '2 d' -> ms; a bare number is refused (the 2004 recall)."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise QuantityError(f"expected a duration written as text (e.g. \"6h\", \"30 min\"), got {text!r}")
    t = str(text).strip().lower()
    for word, unit in sorted(_DURATION_WORDS.items(), key=lambda w: -len(w[0])):
        t = re.sub(rf"(\d)\s*{word}\b", rf"\g<1>{unit}", t)
    t = re.sub(r"\s+", "", t)
    try:
        return parse_duration(t, "duration")
    except UsageError as e:
        raise QuantityError(str(e)) from None


def seconds(text: object) -> int:
    ms = duration(text)
    if ms % 1000 or ms <= 0:
        raise QuantityError(f"'{text}' must be a whole number of seconds, more than 0")
    return ms // 1000


def clock_time(text: object) -> int:
    """'22:00' -> minutes after local midnight."""
    try:
        return minute_of_day(str(text), f"'{text}'")
    except UsageError as e:
        raise QuantityError(str(e)) from None


def flex_step(text: object) -> list[int]:
    """'22:00: 300 mcg/day' -> [1320, 300]."""
    m = re.fullmatch(r"\s*(\d\d:\d\d)\s*[:=]\s*(.+)", str(text))
    if not isinstance(text, str) or not m:
        raise QuantityError(f"'{text}' is not a flex step: write \"HH:MM: DOSE mcg/day\" (e.g. \"22:00: 300 mcg/day\")")
    return [clock_time(m[1]), daily_dose(m[2])]


def moment(text: object) -> tuple[int, int] | datetime:
    """'day 2 22:00' -> (2, 1320); an ISO 8601 local time -> a naive datetime (local)."""
    t = str(text).strip()
    m = re.fullmatch(r"day\s+(\d+)\s+(\d\d:\d\d)", t)
    if m:
        if int(m[1]) < 1:
            raise QuantityError(f"'{text}': days count from day 1 (the scenario's first day)")
        return int(m[1]), clock_time(m[2])
    try:
        when = datetime.fromisoformat(t)
    except ValueError:
        raise QuantityError(f"'{text}' is not a time: write \"day N HH:MM\" or an ISO 8601 local time "
                            f"(e.g. \"2026-03-29T22:00\")") from None
    if when.tzinfo is not None:
        raise QuantityError(f"'{text}': write the pump's local time without a zone (the scenario's "
                            f"utc_offset applies)")
    return when


def with_tolerance(text: object, parse, default_tol: int = 0) -> tuple[int, int]:
    """'7 mL ± 1 stroke' -> (7000000, STROKE_NL) with parse=volume; tolerances in strokes or the same unit."""
    if not isinstance(text, str):
        return parse(text), default_tol
    parts = re.split(r"\s*(?:±|\+/-|\+-)\s*", text, maxsplit=1)
    if len(parts) == 1:
        return parse(text), default_tol
    value, tol = parts
    m = re.fullmatch(rf"({_NUMBER})\s*strokes?", tol.strip())
    if m and parse is volume:
        return parse(value), round(float(m[1]) * STROKE_NL)
    if tol.strip().endswith("%") and not value.strip().endswith("%"):
        base = parse(value)
        return base, round(abs(base) * float(_want(tol, "%", ("%",))) / 100)
    return parse(value), parse(tol)


def volume_or_strokes(text: object) -> int:
    """'2 strokes' or '0.001 mL' -> nL (a tolerance)."""
    m = re.fullmatch(rf"\s*({_NUMBER})\s*strokes?\s*", str(text))
    return round(float(m[1]) * STROKE_NL) if m else volume(text)
