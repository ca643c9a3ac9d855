"""The active alarms as the programmer sees them, for status and the alarms request."""

from alarms.catalogue import PRIORITY, CRITICAL
from core.link import fill


def alarm_list(alarms, dev=None):
    """Active alarms: critical first, then oldest first. With dev, a motor stall also says how
    many restart attempts have failed (`restarts_failed`), for the programmer to say."""
    out = []
    for code in alarms.active:
        since, acked = alarms.active[code]
        a = {"code": code, "priority": PRIORITY[code], "since": since, "acknowledged": acked}
        if code == "motor_stall" and dev is not None:
            a["restarts_failed"] = getattr(dev.alarms, "stall_tries", 0)
        out.append(a)
    out.sort(key=lambda a: (a["priority"] != CRITICAL, a["since"], a["code"]))
    return out


# alarm_list's entries as status writes them, compact (json.dumps costs ~3 us an output character
# on a Pico; test_device_protocol holds the two to the same JSON)
_ALARM = '{"code":"%s","priority":"%s","since":%d,"acknowledged":%s%s}'


# one alarm, the usual case after none, as link.fill writes it: alarm_list's dicts and the %
# formatting, joins and encode below were ~0.9 ms of status on a Pico (an allocation each)
_ONE = b'[{"code":"\x02","priority":"\x02","since":\x01,"acknowledged":\x02}]'


# the last single alarm status listed, [code, since, acknowledged, its JSON]: a host polls status
# every few seconds while an alarm stands, and the same alarm gives the same text (writing it again
# was ~0.25 ms of a status on a Pico: its buffer, the template and the trim)
_one = [None, 0, False, b"[]"]


def alarm_json(alarms, dev):
    """alarm_list(alarms, dev) as JSON text (bytes or bytearray), for status."""
    active = alarms.active
    if not active:  # the usual case: no list to build and sort
        return b"[]"
    if len(active) == 1:
        for code in active:
            if code != "motor_stall":  # (a stall says its restarts: below)
                since, acked = active[code]
                one = _one
                if code == one[0] and since == one[1] and acked == one[2]:
                    return one[3]
                priority = PRIORITY[code]
                out = bytearray(len(_ONE) + 11 + len(code) + len(priority) + 5)
                out[fill(_ONE, (since,), (code, priority, b"true" if acked else b"false"), out):] = b""
                one[0], one[1], one[2], one[3] = code, since, acked, out
                return out
    out = []
    for a in alarm_list(alarms, dev):
        more = ',"restarts_failed":%d' % a["restarts_failed"] if "restarts_failed" in a else ""
        out.append(_ALARM % (a["code"], a["priority"], a["since"], "true" if a["acknowledged"] else "false", more))
    return b"[]" if not out else ("[" + ",".join(out) + "]").encode()
