"""Requests `alarms` (list; args {"ack": true} acknowledges, i.e. silences) and `alarm_test`.

Acknowledged alarms stay listed until their condition clears (alarms/rules.py); the two whose
condition is a past event (a reset, one bad state copy) clear when acknowledged. Loaded per request.
"""

from alarms.listing import alarm_list
from core.errors import CommandError, BAD_ARGUMENT

_SEEN_CLEARS = ("reset_recovered", "memory_noncritical")
_TEST_STEP = 192  # buzzer.KIND_TEST * 64: the test pattern from its first tone
_TEST_MS = 5000  # its length: critical 3 s, 1 s silence, non-critical 1 s


def alarms(dev, args):
    ack = args.get("ack", False)
    if not isinstance(ack, bool):
        raise CommandError(BAD_ARGUMENT, "ack must be true or false, got %r" % (ack,))
    done = []
    if ack:
        done = dev.alarms.acknowledge()
        for code in done:
            dev.log("alarm_acked", (), code)
        for code in _SEEN_CLEARS:  # their condition was the event itself: seen now, so over
            if code in dev.alarms.active:
                dev.alarms.clear(code)
                dev.log("alarm_clear", (), code + " acknowledged")
        dev.hal.buzzer(0)  # silenced now; a new alarm sounds again
        dev.alarms.tone_step = 0
        dev.alarms.tone_at = -1
    return {"alarms": alarm_list(dev.alarms, dev), "acknowledged": done,
            "utc_offset_min": dev.therapy.offset_min}  # for the host to show times in local time


def alarm_test(dev, args):
    dev.alarms.tone_step = _TEST_STEP
    dev.alarms.tone_at = dev.hal.ticks_ms()  # the main loop plays it from now
    dev.log("alarm_test")
    return {"playing": ["critical", "non_critical"], "duration_ms": _TEST_MS}
