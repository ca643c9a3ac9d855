"""Recording a refill (two-phase): volumes, concentration, and the reconciliation warning.

Loaded for the request only: refill() checks and returns the plan (safety/review.py reviews it),
apply() records it on a commit. A refill does not change the daily dose: no dose limit
applies, only the physical ones.
"""

from therapy import units
from therapy.units import LIBRARY
from core.errors import CommandError, BAD_ARGUMENT, NOT_ALLOWED
from safety.field_checks import need_int, check_total, refused
from safety.bolus_fit import prescription_top


def refill(dev, args):
    th = dev.therapy
    if dev.fsm.state == "priming":
        raise CommandError(NOT_ALLOWED, "priming is in progress: refill after it completes")
    cap = dev.hal.capacity_ml * 1000000
    removed = need_int(args, "removed_nl", 0, cap, "nL")
    added = need_int(args, "added_nl", 1, cap, "nL")
    conc = args.get("concentration")
    if not isinstance(conc, int) or isinstance(conc, bool) or conc not in LIBRARY:
        raise CommandError(BAD_ARGUMENT, "concentration %r mcg/mL is not in the drug library (%s mcg/mL)"
                           % (conc, ", ".join(str(c) for c in LIBRARY)), refused("concentration", conc, None, None, "mcg/mL"))
    if th.conc and conc != th.conc and th.mode != "stopped":
        # the running prescription must still fit the pump in the new drug
        check_total(prescription_top(th, (conc,)) + (th.b_rate if th.b_end >= 0 else 0),
                    "the current prescription at %d mcg/mL" % conc)
    expected = th.reservoir_nl if th.conc else -1  # a first fill has nothing to compare
    warnings = []
    warning = _discrepancy(removed, expected)
    if warning:
        warnings.append(warning)
    if th.conc and conc != th.conc:
        warnings.append("concentration changes %d -> %d mcg/mL: the old drug in the catheter and tubing "
                        "goes first, at the rate of the old drug (bridge)" % (th.conc, conc))
    return {"cmd": "refill", "summary": "refill: remove %s mL, add %s mL of %d mcg/mL"
            % (units.ml_text(removed), units.ml_text(added), conc), "warnings": warnings,
            "after": (th.mode, 0 if th.mode == "stopped" else th.daily_x1440 * (1000000 // conc), added),
            "extra": {"refill": _rows(th, removed, expected, added, conc)},
            "removed": removed, "added": added, "conc": conc, "expected": expected, "discrepancy": bool(warning)}


def apply(dev, plan, rv):
    """The commit: the reservoir holds what was added; level alarms clear or rise."""
    added = plan["added"]
    old_conc = dev.therapy.conc
    dev.therapy.refill(added, plan["conc"])
    a = dev.alarms.active
    if "low_reservoir" in a or "empty_reservoir" in a or added <= dev.safety.low_reservoir_nl or getattr(dev.alarms, "stall_try", 0):
        dev.call("alarms.rules", "reservoir", False)  # level alarms clear (or rise); saved after the request
    else:
        dev.alarms.reservoir_floor = dev.safety.low_reservoir_nl  # nothing to raise or clear (heap: no load)
    # one entry: the expectation (-1: a first fill) and the discrepancy warning (1) with the volumes
    dev.log("refill", (plan["removed"], plan["expected"], added, plan["conc"], old_conc, 1 if plan["discrepancy"] else 0))
    out = dev.summary()
    out["warnings"] = rv["warnings"]
    out["overrides"] = []
    return out


def _rows(th, removed, expected, added, conc):
    """What the review shows of a refill: removed against expected, added, the concentration and
    reservoir after it, and the bridge it starts (dead volume, and how long it takes at the
    prescription's average rate; None while nothing is delivered)."""
    rows = {"removed_nl": removed, "expected_nl": None if expected < 0 else expected, "added_nl": added,
            "old_concentration": th.conc or None, "concentration": conc, "reservoir_nl": added}
    if th.conc and conc != th.conc:
        dead = units.TUBING_NL + th.catheter_nl
        per_day = th.daily_x1440 * (1000000 // th.conc_now()) if th.mode != "stopped" else 0
        rows["bridge_nl"] = dead
        rows["bridge_s"] = dead * 124416000 // per_day if per_day else None  # 86400 s x 1440
    return rows


def _discrepancy(removed, expected):
    """Spec §5 (2011 pocket-fill incident): removed volume off the expectation by > 2 mL or > 20 %."""
    diff = abs(removed - expected)
    if expected < 0 or (diff <= 2000000 and diff * 5 <= expected):
        return None
    return "removed %s mL, expected %s mL: possible pocket fill, catheter or pump problem" % (
        units.ml_text(removed), units.ml_text(expected))
