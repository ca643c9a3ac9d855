"""Conversions between the device's integer units and what people read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

DEVICE_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def nl_to_ml(nl: int | None) -> float | None:
    """nL -> mL, exact to the nL (6 decimals)."""
    return None if nl is None else round(nl / 1_000_000, 6)


def device_time(seconds: int | None) -> str | None:
    """Device seconds (since 2000-01-01 UTC) -> ISO 8601 UTC."""
    if seconds is None:
        return None
    return (DEVICE_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"
