"""Host-only clinical arithmetic (no device, no port): the starting daily dose after screening.

Spec §1 (label, Saulino 2016): the starting daily dose is 2 x the effective screening bolus over
24 h, or the screening dose itself if its effect lasted more than 8 h. Screening goes 50 mcg, then
75 mcg after 24 h, then 100 mcg after another 24 h; no response to 100 mcg means the patient is not
a candidate for ITB therapy.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from host_tools.errors import UsageError

SCREENING_DOSES_MCG = (50, 75, 100)
LONG_EFFECT_HOURS = 8
NOT_A_CANDIDATE = "No response to the 100 mcg screening bolus means the patient is not a candidate for ITB therapy."


class StartDose(NamedTuple):
    start_dose_mcg_per_day: int
    rule: str


def start_dose(screening_mcg: int, effect_hours: float) -> StartDose:
    """The starting daily dose for an effective screening bolus whose effect lasted effect_hours."""
    if screening_mcg not in SCREENING_DOSES_MCG:
        raise UsageError(f"--screening must be one of the label's screening doses 50, 75 or 100 mcg, "
                         f"got {screening_mcg}")
    if not (isinstance(effect_hours, (int, float)) and math.isfinite(effect_hours) and effect_hours > 0):
        raise UsageError(f"--effect-hours must be a number of hours more than 0, got {effect_hours}")
    if effect_hours > LONG_EFFECT_HOURS:
        return StartDose(screening_mcg,
                         f"effect lasted {effect_hours:g} h, more than {LONG_EFFECT_HOURS} h: start at the "
                         f"screening dose itself, {screening_mcg} mcg over 24 h")
    return StartDose(2 * screening_mcg,
                     f"effect lasted {effect_hours:g} h, not more than {LONG_EFFECT_HOURS} h: start at "
                     f"2 x the {screening_mcg} mcg screening bolus over 24 h")


def parse_screening(text: str) -> int:
    t = text.strip()
    if not re.fullmatch(r"[0-9]+", t) or int(t) not in SCREENING_DOSES_MCG:
        raise UsageError(f"--screening must be one of the label's screening doses 50, 75 or 100 mcg, got '{text}'")
    return int(t)


def parse_effect_hours(text: str) -> float:
    t = text.strip()
    if not re.fullmatch(r"(\d+(\.\d*)?|\.\d+)", t):
        raise UsageError(f"--effect-hours must be a number of hours (e.g. 6 or 10.5), got '{text}'")
    hours = float(t)
    if hours <= 0:
        raise UsageError(f"--effect-hours must be more than 0 hours, got '{text}' "
                         f"(no effect means the screening bolus was not effective)")
    return hours


def start_dose_text(screening: str, effect_hours: str) -> StartDose:
    """The CLI's entry: validate the typed values, then apply the rule."""
    return start_dose(parse_screening(screening), parse_effect_hours(effect_hours))
