"""Therapy requests besides programming (program_cmd.py): bolus, prime, refill, clock.

A refused request raises CommandError naming the field, the limit and the
value, before anything changes. Safety limits on doses (titration, ceiling,
decrease guard) belong to the limits layer; these are the physical and
format checks without which the engine cannot run.
"""

import dose
from dose import LIBRARY
from errors import CommandError, BAD_ARGUMENT, NOT_ALLOWED
from checks import MAX_BOLUS_S, MAX_CATHETER_NL, need_int, need_drug, check_rate, check_total, concs_ahead

def prescription_top(th, concs):
    """The running prescription's fastest volume rate with its periodic bolus, checked at concs."""
    mode = th.mode
    if mode == "continuous":
        return check_rate("the current dose", th.dose, concs)
    if mode == "flex":
        top = 0
        for day in th.flex:
            for _, mcg in day:
                top = max(top, check_rate("the current flex step", mcg, concs))
        return top
    if mode == "periodic":
        top = check_rate("the current basal", th.dose, concs)
        worst = 0
        for conc in concs:
            worst = max(worst, dose.bolus_rate(th.p_dose * (1000000 // conc), th.p_over)[0])
        return top + worst
    return 0



def bolus(dev, args):
    th = dev.therapy
    if dev.fsm.state != "running":
        raise CommandError(NOT_ALLOWED, "a bolus goes on top of running therapy; the pump is %s" % dev.fsm.state)
    if th.b_end >= 0:
        raise CommandError(NOT_ALLOWED, "a bolus is already running (%d mcg); wait until it ends" % th.b_dose)
    mcg = need_int(args, "dose_mcg", 1, 100000, "mcg")
    over = need_int(args, "over_s", 1, MAX_BOLUS_S, "seconds")
    concs = concs_ahead(th)
    worst = 0
    for conc in concs:
        worst = max(worst, dose.bolus_rate(mcg * dose.nl_per_mcg(conc), over * 10)[0])
    # the therapy's fastest moment (flex step, periodic bolus) under this bolus
    check_total(prescription_top(th, concs) + worst, "%d mcg over %d s with the therapy" % (mcg, over))
    th.start_bolus(mcg, over * 10)
    dev.log("bolus", "%d mcg over %d s" % (mcg, over))
    return dev.summary()


def prime(dev, args):
    th = dev.therapy
    need_drug(th)
    if not dev.fsm.can("prime"):
        raise CommandError(NOT_ALLOWED, "cannot prime while the pump is %s" % dev.fsm.state)
    cath = need_int(args, "catheter_nl", 0, MAX_CATHETER_NL, "nL")
    th.prime(cath)
    dev.fsm.fire("prime")
    dev.log("prime", "catheter %d nL + tubing" % cath)
    return dev.summary()


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
                           % (conc, ", ".join(str(c) for c in LIBRARY)))
    if th.conc and conc != th.conc and th.mode != "stopped":
        # the running prescription must still fit the pump in the new drug
        check_total(prescription_top(th, (conc,)) + (th.b_rate if th.b_end >= 0 else 0),
                    "the current prescription at %d mcg/mL" % conc)
    expected = th.reservoir_nl if th.conc else -1  # a first fill has nothing to compare
    th.refill(added, conc)
    a = dev.alarms.active
    if "low_reservoir" in a or "empty_reservoir" in a or added <= dev.low_reservoir_nl or getattr(dev, "stall_try", 0):
        dev.call("alarm_rules", "reservoir", False)  # level alarms clear (or rise); saved after the request
    else:
        dev.reservoir_floor = dev.low_reservoir_nl  # nothing to raise or clear (heap: no load)
    out = dev.summary()
    dev.log("refill", "rm %s add %s @%dmcg/mL" % (dose.ml_text(removed), dose.ml_text(added), conc))
    warning = _discrepancy(removed, expected)
    if warning:
        out["warnings"] = [warning]
        dev.log("refill_warn", "rm %s expected %s mL" % (dose.ml_text(removed), dose.ml_text(expected)))
    return out


def _discrepancy(removed, expected):
    """Spec §5 (2011 pocket-fill incident): removed volume off the expectation by > 2 mL or > 20 %."""
    diff = abs(removed - expected)
    if expected < 0 or (diff <= 2000000 and diff * 5 <= expected):
        return None
    return "removed %s mL, expected %s mL: possible pocket fill, catheter or pump problem" % (
        dose.ml_text(removed), dose.ml_text(expected))


def clock(dev, args):
    th = dev.therapy
    shift = []
    # check every field before changing anything
    now = None if args.get("set_s") is None else need_int(args, "set_s", 0, 0x3FFFFFFF, "seconds since 2000-01-01")
    new = None if args.get("utc_offset_min") is None else need_int(args, "utc_offset_min", -720, 840, "minutes")
    if now is not None:
        dev.log("clock", "%d -> %d" % (th.now_s(), now))
        dev.hal.rtc_set(now)
        th.set_clock(now)
    if new is not None:
        old = th.offset_min
        if new != old and th.mode == "flex":
            delta = new - old
            shift.append("local time moves %+d min: flex steps now start %d min %s in UTC"
                         % (delta, abs(delta), "earlier" if delta > 0 else "later"))
            for start, mcg in th.flex[0]:
                shift.append("%02d:%02d local (%d mcg/day): %s UTC, was %s UTC"
                             % (start // 60, start % 60, mcg, _hhmm(start - new), _hhmm(start - old)))
        th.set_offset(new)
        dev.log("utc_offset", "%+d -> %+d min" % (old, new))
    return {"clock": th.now_s(), "utc_offset_min": th.offset_min, "schedule_shift": shift}


def _hhmm(minutes):
    minutes %= 1440
    return "%02d:%02d" % (minutes // 60, minutes % 60)
