"""Durations typed by users always carry a unit: '90s', '15m', '6h', '2d', or '1h30m'.

A bare number is refused: a 2004 pump recall came from a bolus interval typed
in minutes where hours were meant.
"""

from __future__ import annotations

import re

from host_tools.errors import UsageError

UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d)")


def parse_duration(text: str, name: str = "duration") -> int:
    """Return milliseconds; raise UsageError naming the problem otherwise."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        raise UsageError(
            f"{name} '{text}' has no unit: write it with one, e.g. 90s, 15m, 6h or 2d "
            f"(bare numbers are refused)")
    if not t or not re.fullmatch(r"(\d+(ms|s|m|h|d))+", t):
        raise UsageError(f"{name} '{text}' is not a duration: use whole numbers with units s, m, h, d (e.g. 6h, 1h30m)")
    return sum(int(n) * UNIT_MS[u] for n, u in _PART.findall(t))


def format_duration(ms: int) -> str:
    parts = []
    for unit in ("d", "h", "m", "s"):
        n, ms = divmod(ms, UNIT_MS[unit])
        if n:
            parts.append(f"{n}{unit}")
    if ms or not parts:
        parts.append(f"{ms}ms")
    return "".join(parts)


def duration_text(seconds: int) -> str:
    """Seconds as a person reads a length of time: '30 min', '3 h', '2 d', '1 h 30 min', '45 s'."""
    if seconds < 0:
        return "-" + duration_text(-seconds)
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {unit}")
    return " ".join(parts) or "0 s"
