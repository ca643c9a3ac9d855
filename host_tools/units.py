"""Conversions between the device's integer units and what people read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

DEVICE_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
NL_PER_ML = 1_000_000
MINUTES_PER_DAY = 24 * 60


def nl_to_ml(nl: int | None) -> float | None:
    """nL -> mL, exact to the nL (6 decimals)."""
    return None if nl is None else round(nl / NL_PER_ML, 6)


def ml_text(nl: int) -> str:
    """nL -> the exact mL text, always 6 decimals: 150000 -> '0.150000'."""
    sign = "-" if nl < 0 else ""
    whole, frac = divmod(abs(nl), NL_PER_ML)
    return f"{sign}{whole}.{frac:06d}"


def device_time(seconds: int | None) -> str | None:
    """Device seconds (since 2000-01-01 UTC) -> ISO 8601 UTC."""
    if seconds is None:
        return None
    return (DEVICE_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def device_seconds(when: datetime) -> int:
    """An aware datetime -> device seconds (whole seconds since 2000-01-01 UTC, rounded down)."""
    return (when - DEVICE_EPOCH) // timedelta(seconds=1)


def offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def clock_text(minute_of_day: int) -> str:
    """Minutes after local midnight -> 'HH:MM' (420 -> '07:00')."""
    h, m = divmod(minute_of_day, 60)
    return f"{h:02d}:{m:02d}"


def ml_exact(nl: int) -> str:
    """nL -> mL as typed back to a person: at least 2 decimals, more only where they are not
    zero (25000000 -> '25.00', 1000001 -> '1.000001', 150000 -> '0.15')."""
    text = ml_text(nl).rstrip("0")
    whole, frac = text.split(".")
    return f"{whole}.{frac:0<2}"


def ml_show(nl: int) -> str:
    """nL -> mL as a clinician programmer shows a volume: 2 decimals (19957000 -> '19.96')."""
    return f"{nl / NL_PER_ML:.2f}"


def rate_show(nl_per_day: int) -> str:
    """nL/day -> mL/day as a programmer shows a rate: 3 decimals (the minimum rate is 0.048)."""
    return f"{nl_per_day / NL_PER_ML:.3f}"


def local_time(when: int | str | None, offset_min: int) -> str:
    """Device seconds (or ISO 8601 UTC) -> the pump's local time 'YYYY-MM-DD HH:MM'; '-' for None.
    The offset is shown once, on the clock line, not beside every date."""
    if when is None:
        return "-"
    utc = (DEVICE_EPOCH + timedelta(seconds=when) if isinstance(when, int)
           else datetime.fromisoformat(when.replace("Z", "+00:00")))
    return (utc + timedelta(minutes=offset_min)).strftime("%Y-%m-%d %H:%M")


def offset_minutes(text: str) -> int:
    """'+01:30' -> 90 (offset_text's inverse)."""
    sign = -1 if text.startswith("-") else 1
    h, m = text.lstrip("+-").split(":")
    return sign * (int(h) * 60 + int(m))
