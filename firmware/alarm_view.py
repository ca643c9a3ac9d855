"""The active alarms as the programmer sees them, for status and the alarms request."""

from alarms import PRIORITY, CRITICAL


def alarm_list(alarms):
    """Active alarms: critical first, then oldest first."""
    out = []
    for code in alarms.active:
        since, acked = alarms.active[code]
        out.append({"code": code, "priority": PRIORITY[code], "since": since, "acknowledged": acked})
    out.sort(key=lambda a: (a["priority"] != CRITICAL, a["since"], a["code"]))
    return out
