"""Alarm tones (spec §5): one tone change per call, when the ticks reach dev.alarms.tone_at.

device.service() calls step(); alarms/rules.py sounds a new alarm by setting dev.alarms.tone_step = 0 and
dev.alarms.tone_at = now. dev.alarms.tone_step = kind * 64 + the index of the next (Hz, ms) pair of the kind's
pattern; kind 0 means "choose from the unacknowledged alarms now". Acknowledged alarms are silent.

  non-critical  one 1 s tone, repeating every 60 min
  critical      two tones alternating every 0.5 s for 3 s, repeating every 10 min (sim default)
  test          the critical pattern, 1 s of silence, the non-critical pattern, once (alarm-test)
"""

from micropython import const
from alarms.catalogue import PRIORITY, CRITICAL

HIGH_HZ = const(1320)  # sim default frequencies
LOW_HZ = const(880)
BEEP_HZ = const(1000)
NON_CRITICAL_TONE = (BEEP_HZ, 1000)
CRITICAL_TONE = (HIGH_HZ, 500, LOW_HZ, 500, HIGH_HZ, 500, LOW_HZ, 500, HIGH_HZ, 500, LOW_HZ, 500)
TEST_TONE = CRITICAL_TONE + (0, 1000) + NON_CRITICAL_TONE
KIND_NON_CRITICAL = const(1)
KIND_CRITICAL = const(2)
KIND_TEST = const(3)
PATTERNS = (None, NON_CRITICAL_TONE, CRITICAL_TONE, TEST_TONE)
EVERY_MS = (0, 3600000, 600000, 0)  # from one start of the pattern to the next (0: once)


def step(dev):
    """The next tone change: the pattern's next tone, or silence and the next repetition."""
    kind, i = divmod(getattr(dev.alarms, "tone_step", 0), 64)
    hal = dev.hal
    if not kind:
        kind = due(dev)
        if not kind:
            hal.buzzer(0)
            return
    seq = PATTERNS[kind]
    now = hal.ticks_ms()
    if i < len(seq):
        hal.buzzer(seq[i])
        dev.alarms.tone_at = hal.ticks_add(now, seq[i + 1])
        dev.alarms.tone_step = kind * 64 + i + 2
        return
    hal.buzzer(0)
    dev.alarms.tone_step = 0
    nxt = due(dev)
    if nxt:
        wait = EVERY_MS[nxt] - (length_ms(seq) if nxt == kind else 0)
        dev.alarms.tone_at = hal.ticks_add(now, wait)


def due(dev):
    """The pattern the unacknowledged alarms call for: critical, non-critical, or 0 (silence)."""
    kind = 0
    active = dev.alarms.active
    for code in active:
        if not active[code][1]:
            if PRIORITY[code] == CRITICAL:
                return KIND_CRITICAL
            kind = KIND_NON_CRITICAL
    return kind


def length_ms(seq):
    total = 0
    for i in range(1, len(seq), 2):
        total += seq[i]
    return total

