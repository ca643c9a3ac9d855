"""The alarm catalogue as a clinician reads it: each alarm's name and what to do.

The catalogue has one owner per column. The codes and their priorities are the firmware's
(`alarms.PRIORITY`, read here as data by host_tools/pump_facts.py), and each priority's tone is
`buzzer.py`'s; the firmware holds no text, which would cost its heap. The words are the host's,
here only, one entry per code: tests/test_one_place.py fails when a code has no words, words
have no code, or the docs' catalogue tables disagree with the firmware. The host never prints a
raw code: everything it says of an alarm goes through `label`, `advice` and `priority_words`.
"""

from __future__ import annotations

from typing import NamedTuple

from host_tools.pump_facts import fact

PRIORITY: dict[str, str] = fact("PRIORITY")  # code -> "critical" | "non_critical" (firmware alarms.py)
CRITICAL: str = fact("CRITICAL")
EOS_AFTER_DAYS: int = fact("EOS_AFTER_S") // 86400  # end of service follows the replacement indicator (spec §2)


class Words(NamedTuple):
    label: str  # the alarm's name in a line of text
    advice: str  # what it means for the patient and what to do (spec §5)


CATALOGUE: dict[str, Words] = {
    "low_reservoir": Words("low reservoir", "the reservoir is low: refill by the refill date"),
    "empty_reservoir": Words("empty reservoir",
                             "the reservoir is empty: the pump runs at the minimum rate; refill now"),
    "motor_stall": Words("motor stall",
                         "the motor stalled: delivery is halted and the pump retries; check the pump and catheter"),
    "battery_eri": Words("battery replacement indicator (ERI)",
                         f"the battery reached its replacement indicator: end of service follows in "
                         f"{EOS_AFTER_DAYS} days; replace the pump"),
    "battery_eos": Words("battery end of service (EOS)",
                         "the battery reached end of service: the pump has stopped; replace it now"),
    "battery_fault": Words("battery fault", "battery fault: the pump runs at the minimum rate; replace the pump"),
    "memory_noncritical": Words("memory error, recovered",
                                "one memory copy was damaged and recovered from the other: acknowledge"),
    "memory_critical": Words("memory error, no valid copy",
                             "no valid memory copy: the pump stopped with safe defaults; reprogram it"),
    "reset_recovered": Words("reset recovered",
                             "the pump restarted (watchdog or power) and resumed its therapy: acknowledge"),
}
PRIORITY_WORDS = {CRITICAL: "critical", fact("NON_CRITICAL"): "non-critical"}
# why a pump runs at the minimum rate: the alarm that put it there
MINIMUM_RATE_CAUSES = ("empty_reservoir", "battery_fault", "memory_critical")


def label(code: str) -> str:
    """The alarm's name; an alarm this programmer does not know says so (a newer pump's)."""
    w = CATALOGUE.get(code)
    return w.label if w else f"an alarm this programmer does not know ({code.replace('_', ' ')}: update itbpump)"


def advice(code: str) -> str | None:
    w = CATALOGUE.get(code)
    return w.advice if w else None


def priority_words(priority: str) -> str:
    return PRIORITY_WORDS.get(priority, priority.replace("_", "-"))
