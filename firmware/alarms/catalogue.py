"""Active alarms: raised, acknowledged (silenced) and cleared, two priorities.

When each alarm is raised and cleared, and what it does to delivery: alarms/rules.py.
"""

from micropython import const

CRITICAL = "critical"
NON_CRITICAL = "non_critical"
EMPTY_NL = const(500000)  # empty-reservoir threshold, 0.5 mL (status predicts the refill date from it)

PRIORITY = {
    "low_reservoir": NON_CRITICAL,
    "empty_reservoir": CRITICAL,
    "motor_stall": CRITICAL,
    "battery_eri": NON_CRITICAL,
    "battery_eos": CRITICAL,
    "battery_fault": CRITICAL,
    "memory_noncritical": NON_CRITICAL,
    "memory_critical": CRITICAL,
    "reset_recovered": NON_CRITICAL,
}


class Alarms:
    def __init__(self, clock, notify):
        self._clock = clock  # () -> device seconds
        self._notify = notify  # (event, code, priority, since) -> None
        self.active = {}  # code -> [since, acknowledged]
        # watch points set by alarms/rules.py; crossing one loads it (nothing resident decides)
        self.reservoir_floor = -1  # reservoir nL at or below which to look again (-1: never)
        self.battery_floor = 0  # battery mV at or below which to look again
        self.wake_s = -1  # device time alarm_rules wants its tick (-1: none)
        self.tone_at = -1  # tick of the next buzzer change (alarms/tones.py), -1: none
        self.eri_s = None  # device time the battery reached ERI (EOS follows 90 days later)
        # [alarm_s, refill_s, due]: the dates predicted from the schedule (therapy/dates.py), again when due
        # is set (by whatever changes the therapy, the reservoir or a threshold); updated in place
        self.dates = [None, None, True]

    def raise_alarm(self, code):
        if code not in PRIORITY:
            raise ValueError("unknown alarm " + code)
        if code in self.active:
            return False
        since = self._clock()
        self.active[code] = [since, False]
        self._notify("raised", code, PRIORITY[code], since)
        return True

    def acknowledge(self):
        """Silence every active alarm; returns the codes that were not acknowledged yet."""
        done = []
        for code in self.active:
            entry = self.active[code]
            if not entry[1]:
                entry[1] = True
                done.append(code)
                self._notify("acknowledged", code, PRIORITY[code], entry[0])
        return done

    def clear(self, code):
        entry = self.active.pop(code, None)
        if entry is not None:
            self._notify("cleared", code, PRIORITY[code], entry[0])

    def has_critical(self):
        for code in self.active:
            if PRIORITY[code] == CRITICAL:
                return True
        return False
