"""Therapy requests besides programming (program_cmd.py): bolus, prime, refill, clock.

A refused request raises CommandError naming the field, the limit and the
value, before anything changes. Safety limits on doses (titration, ceiling,
decrease guard) belong to the limits layer; these are the physical and
format checks without which the engine cannot run.
"""

import dose
from dose import MAX_RATE_NL, LIBRARY, ml_text
from errors import CommandError, BAD_ARGUMENT, NOT_ALLOWED
from checks import MAX_BOLUS_S, MAX_CATHETER_NL, need_int, need_drug

def bolus(dev, args):
    th = dev.therapy
    if dev.fsm.state != "running":
        raise CommandError(NOT_ALLOWED, "a bolus goes on top of running therapy; the pump is %s" % dev.fsm.state)
    if th.b_end >= 0:
        raise CommandError(NOT_ALLOWED, "a bolus is already running (%d mcg); wait until it ends" % th.b_dose)
    mcg = need_int(args, "dose_mcg", 1, 100000, "mcg")
    over = need_int(args, "over_s", 1, MAX_BOLUS_S, "seconds")
    npm = dose.nl_per_mcg(th.conc_now())
    rate, _ = dose.bolus_rate(mcg * npm, over * 10)
    # the worst moment: the therapy's fastest rate (a periodic bolus may come on top)
    worst = th.d.rate + rate + (th.p_rate if th.mode == "periodic" and th.p_end < 0 else 0)
    if worst > MAX_RATE_NL:
        raise CommandError(BAD_ARGUMENT, "%d mcg over %d s needs %s mL/day with the therapy: above the pump's "
                           "maximum 24 mL/day; give it over a longer duration" % (mcg, over, ml_text(worst)))
    th.start_bolus(mcg, over * 10)
    return dev.summary()


def prime(dev, args):
    th = dev.therapy
    need_drug(th)
    if not dev.fsm.can("prime"):
        raise CommandError(NOT_ALLOWED, "cannot prime while the pump is %s" % dev.fsm.state)
    cath = need_int(args, "catheter_nl", 0, MAX_CATHETER_NL, "nL")
    th.prime(cath)
    dev.fsm.fire("prime")
    return dev.summary()


def refill(dev, args):
    th = dev.therapy
    if dev.fsm.state == "priming":
        raise CommandError(NOT_ALLOWED, "priming is in progress: refill after it completes")
    cap = dev.hal.capacity_ml * 1000000
    need_int(args, "removed_nl", 0, cap, "nL")
    added = need_int(args, "added_nl", 1, cap, "nL")
    conc = args.get("concentration")
    if conc not in LIBRARY or isinstance(conc, bool):
        raise CommandError(BAD_ARGUMENT, "concentration %r mcg/mL is not in the drug library (%s mcg/mL)"
                           % (conc, ", ".join(str(c) for c in LIBRARY)))
    th.refill(added, conc)
    return dev.summary()


def clock(dev, args):
    th = dev.therapy
    shift = []
    if args.get("set_s") is not None:
        now = need_int(args, "set_s", 0, 0x3FFFFFFF, "seconds since 2000-01-01")
        dev.hal.rtc_set(now)
        th.set_clock(now)
    if args.get("utc_offset_min") is not None:
        new = need_int(args, "utc_offset_min", -720, 840, "minutes")
        old = th.offset_min
        if new != old and th.mode == "flex":
            delta = new - old
            shift.append("local time moves %+d min: flex steps now start %d min %s in UTC"
                         % (delta, abs(delta), "earlier" if delta > 0 else "later"))
            for start, mcg in th.flex[0]:
                shift.append("%02d:%02d local (%d mcg/day): %s UTC, was %s UTC"
                             % (start // 60, start % 60, mcg, _hhmm(start - new), _hhmm(start - old)))
        th.set_offset(new)
    return {"clock": th.now_s(), "utc_offset_min": th.offset_min, "schedule_shift": shift}


def _hhmm(minutes):
    minutes %= 1440
    return "%02d:%02d" % (minutes // 60, minutes % 60)
