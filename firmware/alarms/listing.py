"""The active alarms as the programmer sees them, for status and the alarms request."""

from alarms.catalogue import PRIORITY, CRITICAL


def alarm_list(alarms, dev=None):
    """Active alarms: critical first, then oldest first. With dev, a motor stall also says how
    many restart attempts have failed (`restarts_failed`), for the programmer to say."""
    out = []
    for code in alarms.active:
        since, acked = alarms.active[code]
        a = {"code": code, "priority": PRIORITY[code], "since": since, "acknowledged": acked}
        if code == "motor_stall" and dev is not None:
            a["restarts_failed"] = getattr(dev, "stall_tries", 0)
        out.append(a)
    out.sort(key=lambda a: (a["priority"] != CRITICAL, a["since"], a["code"]))
    return out
