"""One table: every field a request sends to the pump, with the CLI option a user types for it,
its unit as people read it, and its name in `--json` output.

The wire keeps device units (nL, seconds, minutes after midnight, device seconds); people and
scripts get user units. Everything that turns a device field into words or JSON (refusals,
`requests.describe`) looks it up here, so a device name never reaches a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from host_tools.durations import duration_text
from host_tools.units import clock_text, device_time, ml_exact, nl_to_ml, offset_text


@dataclass(frozen=True)
class Field:
    option: str  # what the user typed, e.g. "--added"
    kind: str  # how a device value becomes the user's: a key of CONVERT
    unit: str  # the user's unit, shown after the number ("" for none)
    json: str  # the field's name in --json output (user units)
    largest: str = "{max}, the most allowed"  # the upper bound in words: "the {max} the reservoir holds"


# kind -> (device value -> text without unit, device value -> JSON value)
CONVERT: dict[str, tuple[Any, Any]] = {
    "number": (str, lambda v: v),
    "mL": (ml_exact, nl_to_ml),
    "duration": (lambda s: duration_text(s), lambda s: s),
    "clock": (clock_text, clock_text),
    "time": (lambda s: f"{device_time(s)}", device_time),
    "offset": (offset_text, offset_text),
    "characters": (str, lambda v: v),
    "choice": (str, lambda v: v),
}

_DOSE_DAY = ("number", "mcg/day")
_OVERRIDE = Field("--override", "characters", "characters", "override")
_BOLUS_DOSE = Field("--dose", "number", "mcg", "dose_mcg")
FIELDS: dict[tuple[str, str], Field] = {
    ("program", "mode"): Field("program MODE", "choice", "", "mode"),
    ("program", "dose_mcg"): Field("--dose", *_DOSE_DAY, "dose_mcg_per_day"),
    ("program", "days"): Field("--day/--step", "choice", "", "days"),
    ("program", "step_start_min"): Field("--step (its start)", "clock", "", "step_start"),
    ("program", "step_dose_mcg"): Field("--step (its dose)", *_DOSE_DAY, "step_dose_mcg_per_day"),
    ("program", "basal_mcg"): Field("--basal", *_DOSE_DAY, "basal_mcg_per_day"),
    ("program", "bolus_mcg"): Field("--bolus", "number", "mcg", "bolus_mcg"),
    ("program", "every_s"): Field("--every", "duration", "", "every_s"),
    ("program", "over_s"): Field("--over", "duration", "", "over_s", "{max}, the longest allowed: each bolus ends before the next"),
    ("program", "start_min"): Field("--start", "clock", "", "start"),
    ("program", "reason"): Field("--reason", "characters", "characters", "reason"),
    ("program", "override"): _OVERRIDE,
    ("bolus", "dose_mcg"): _BOLUS_DOSE,
    ("bolus", "over_s"): Field("--over", "duration", "", "over_s", "{max}, the longest a bolus may last"),
    ("prime", "catheter_nl"): Field("--catheter-volume", "mL", "mL", "catheter_volume_ml",
                                    "{max}, the largest catheter volume"),
    ("refill", "removed_nl"): Field("--removed", "mL", "mL", "removed_ml", "the {max} the reservoir holds"),
    ("refill", "added_nl"): Field("--added", "mL", "mL", "added_ml", "the {max} the reservoir holds"),
    ("refill", "concentration"): Field("--concentration", "choice", "mcg/mL", "concentration_mcg_per_ml"),
    ("clock", "set_s"): Field("--set", "time", "", "set"),
    ("clock", "utc_offset_min"): Field("--utc-offset", "offset", "", "utc_offset"),
    ("limits", "profile"): Field("--origin", "choice", "", "origin"),
    ("limits", "titration_pct"): Field("--titration", "number", "%", "titration_pct", "{max}, the most the patient's profile allows"),
    ("limits", "low_reservoir_nl"): Field("--low-reservoir", "mL", "mL", "low_reservoir_ml"),
    ("limits", "bolus_cap_mcg"): Field("--bolus-cap", "number", "mcg", "bolus_cap_mcg"),
    ("limits", "initial_cap_mcg"): Field("--initial-cap", *_DOSE_DAY, "initial_cap_mcg",
                                         "{max}, the hard maximum"),
    ("limits", "hard_max_mcg"): Field("--hard-max", *_DOSE_DAY, "hard_max_mcg"),
    ("ptm", "enable"): Field("--enable/--disable", "choice", "", "enable"),
    ("ptm", "dose_mcg"): _BOLUS_DOSE,
    ("ptm", "over_s"): Field("--over", "duration", "", "over_s", "{max}, the lockout"),
    ("ptm", "max_per_day"): Field("--max-per-day", "number", "patient boluses", "max_per_day"),
    ("ptm", "lockout_s"): Field("--lockout", "duration", "", "lockout_s"),
    ("ptm", "override"): _OVERRIDE,
    ("log", "last"): Field("--last", "number", "entries", "last"),
    ("log", "before"): Field("--before", "number", "", "before"),
}


def field(cmd: str, name: str) -> Field | None:
    """The table's entry for a device field of `cmd` (any command's, if `cmd` has none)."""
    found = FIELDS.get((cmd, name))
    if found is None:
        found = next((f for (_, n), f in FIELDS.items() if n == name), None)
    return found


def value_text(f: Field, v: Any) -> str:
    """A device value of field f as a person reads it, with its unit."""
    if isinstance(v, bool) or not isinstance(v, int):
        return repr(v) if v is not None else "nothing"
    text = CONVERT[f.kind][0](v)
    return f"{text} {f.unit}".rstrip()


def value_json(f: Field, v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int):
        return v
    return CONVERT[f.kind][1](v)


# each safety limit (code 11 `limit`, the log's overrides) as a person names it
LIMIT_LABELS = {
    "titration": "the titration limit", "initial_cap": "the initial-dose cap", "ceiling": "the ceiling",
    "hard_max": "the hard maximum", "decrease": "the decrease guard", "bolus_cap": "the bolus cap",
    "history_full": "the 24 h dose history", "ptm_lockout": "the patient-bolus lockout",
    "ptm_daily_max": "the patient-bolus daily maximum",
}


def limit_label(limit: str) -> str:
    return LIMIT_LABELS.get(limit, limit.replace("_", " "))


# device names that must not reach a person: every field above, and any snake_case identifier
DEVICE_NAMES = frozenset(n for _, n in FIELDS if "_" in n)
_IDENT = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


def words(text: str, cmd: str = "") -> str:
    """A device text in user words: device field names become the options a user types, other
    identifiers (states, alarm codes) words, seconds durations and nL volumes user units."""
    def name(m: re.Match) -> str:
        f = field(cmd, m.group(0)) if m.group(0) in DEVICE_NAMES else None
        return f.option if f else m.group(0).replace("_", " ")

    text = re.sub(r"\b(\d+) (?:more )?s\b", lambda m: duration_text(int(m.group(1))), text)
    text = re.sub(r"\b(-?\d+) nL\b", lambda m: f"{ml_exact(int(m.group(1)))} mL", text)
    return _IDENT.sub(name, text)
