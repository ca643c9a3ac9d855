"""Therapy requests from the programmer: check every field, then apply to the engine.

A refused request raises CommandError naming the field, the limit and the
value, before anything changes. Safety limits on doses (titration, ceiling,
decrease guard) belong to the limits layer; these are the physical and
format checks without which the engine cannot run.
"""

import dose
from dose import DS_PER_DAY, MAX_RATE_NL, MIN_RATE_NL, LIBRARY, MAX_FLEX_STEPS, ml_text
from errors import CommandError, BAD_ARGUMENT, NOT_ALLOWED
from cmd_info import summary

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CATHETER_NL = 1000000  # 1 mL: longer than any intrathecal catheter (sim default)
MAX_BOLUS_S = 86400


def _int(args, name, lo, hi, unit=""):
    v = args.get(name)
    if not isinstance(v, int) or isinstance(v, bool):
        raise CommandError(BAD_ARGUMENT, "%s must be a whole number%s, got %r" % (name, unit and " of " + unit, v))
    if v < lo or v > hi:
        raise CommandError(BAD_ARGUMENT, "%s %d is outside %d..%d%s" % (name, v, lo, hi, unit and " " + unit))
    return v


def _need_drug(th):
    if not th.conc:
        raise CommandError(NOT_ALLOWED, "the reservoir has never been filled: refill first (concentration unknown)")


def _check_rate(what, mcg, npm, conc):
    rate = mcg * npm
    if rate < MIN_RATE_NL or rate > MAX_RATE_NL:
        raise CommandError(BAD_ARGUMENT, "%s %d mcg/day is %s mL/day at %d mcg/mL: outside the pump's rate range "
                           "0.048..24 mL/day" % (what, mcg, ml_text(rate), conc))
    return rate


def _flex_day(name, steps, npm, conc):
    if not isinstance(steps, list) or not steps:
        raise CommandError(BAD_ARGUMENT, "flex day %s needs at least one step" % name)
    if len(steps) > MAX_FLEX_STEPS:
        raise CommandError(BAD_ARGUMENT, "at most %d flex steps per day, got %d for %s"
                           % (MAX_FLEX_STEPS, len(steps), name))
    out = []
    last = -1
    for step in steps:
        if not isinstance(step, list) or len(step) != 2:
            raise CommandError(BAD_ARGUMENT, "flex step must be [start_min, dose_mcg], got %r" % (step,))
        start = _int({"start_min": step[0]}, "start_min", 0, 1439, "minutes after midnight")
        mcg = _int({"dose_mcg": step[1]}, "dose_mcg", 1, 100000, "mcg/day")
        if start <= last:
            raise CommandError(BAD_ARGUMENT, "flex steps of %s must start at increasing times (%02d:%02d after %02d:%02d)"
                               % (name, start // 60, start % 60, last // 60, last % 60))
        _check_rate("flex step dose", mcg, npm, conc)
        last = start
        out.append((start, mcg))
    return tuple(out)


def program(dev, args):
    th = dev.therapy
    mode = args.get("mode")
    state = dev.fsm.state
    if state == "priming":
        raise CommandError(NOT_ALLOWED, "priming is in progress: program after it completes (or stop it)")
    if mode == "stop":
        reason = args.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise CommandError(BAD_ARGUMENT, "stopping therapy needs a reason (withdrawal risk)")
        if len(reason) > 200:
            raise CommandError(BAD_ARGUMENT, "reason is %d characters; at most 200" % len(reason))
        th.stop()
        if dev.fsm.can("stop"):
            dev.fsm.fire("stop")
        return summary(dev)
    _need_drug(th)
    npm = dose.nl_per_mcg(th.conc_now())
    conc = th.conc_now()
    if mode == "continuous":
        mcg = _int(args, "dose_mcg", 1, 100000, "mcg/day")
        _check_rate("dose", mcg, npm, conc)
        th.program_continuous(mcg)
    elif mode == "flex":
        days = args.get("days")
        if not isinstance(days, dict):
            raise CommandError(BAD_ARGUMENT, "flex needs 'days': {'all': [...]} or one list per weekday")
        if "all" in days:
            if len(days) != 1:
                raise CommandError(BAD_ARGUMENT, "flex 'all' cannot be combined with weekday schedules")
            week = (_flex_day("all", days["all"], npm, conc),) * 7
        else:
            missing = [d for d in DAYS if d not in days]
            extra = [k for k in days if k not in DAYS]
            if missing or extra:
                raise CommandError(BAD_ARGUMENT, "day-specific flex needs all seven days mon..sun; missing: %s%s"
                                   % (", ".join(missing) or "none", extra and "; unknown: " + ", ".join(extra) or ""))
            week = tuple(_flex_day(d, days[d], npm, conc) for d in DAYS)
        th.program_flex(week)
    elif mode == "periodic":
        basal = _int(args, "basal_mcg", 1, 100000, "mcg/day")
        bolus = _int(args, "bolus_mcg", 1, 100000, "mcg")
        every = _int(args, "every_s", 600, 7 * 86400, "seconds")
        over = _int(args, "over_s", 1, MAX_BOLUS_S, "seconds")
        if over >= every:
            raise CommandError(BAD_ARGUMENT, "over_s %d must be shorter than every_s %d" % (over, every))
        rate = _check_rate("basal", basal, npm, conc)
        bolus_rate, _ = dose.bolus_rate(bolus * npm, over * 10)
        if rate + bolus_rate > MAX_RATE_NL:
            raise CommandError(BAD_ARGUMENT, "basal + bolus run at %s mL/day: above the pump's maximum 24 mL/day; "
                               "deliver the bolus over a longer duration" % ml_text(rate + bolus_rate))
        start = args.get("start_min")
        if start is None:
            first = 0
        else:
            start = _int(args, "start_min", 0, 1439, "minutes after midnight")
            local = th.now_s() + th.offset_min * 60
            first = ((start * 60 - local % 86400) % 86400) * 10 - th.t % 10
            if first < 0:
                first += DS_PER_DAY
        th.program_periodic(basal, bolus, every * 10, over * 10, first)
    else:
        raise CommandError(BAD_ARGUMENT, "mode must be one of continuous, flex, periodic, stop; got %r" % (mode,))
    if dev.fsm.can("program"):
        dev.fsm.fire("program")
    return summary(dev)


def bolus(dev, args):
    th = dev.therapy
    if dev.fsm.state != "running":
        raise CommandError(NOT_ALLOWED, "a bolus goes on top of running therapy; the pump is %s" % dev.fsm.state)
    if th.b_end >= 0:
        raise CommandError(NOT_ALLOWED, "a bolus is already running (%d mcg); wait until it ends" % th.b_dose)
    mcg = _int(args, "dose_mcg", 1, 100000, "mcg")
    over = _int(args, "over_s", 1, MAX_BOLUS_S, "seconds")
    npm = dose.nl_per_mcg(th.conc_now())
    rate, _ = dose.bolus_rate(mcg * npm, over * 10)
    # the worst moment: the therapy's fastest rate (a periodic bolus may come on top)
    worst = th.d.rate + rate + (th.p_rate if th.mode == "periodic" and th.p_end < 0 else 0)
    if worst > MAX_RATE_NL:
        raise CommandError(BAD_ARGUMENT, "%d mcg over %d s needs %s mL/day with the therapy: above the pump's "
                           "maximum 24 mL/day; give it over a longer duration" % (mcg, over, ml_text(worst)))
    th.start_bolus(mcg, over * 10)
    return summary(dev)


def prime(dev, args):
    th = dev.therapy
    _need_drug(th)
    if not dev.fsm.can("prime"):
        raise CommandError(NOT_ALLOWED, "cannot prime while the pump is %s" % dev.fsm.state)
    cath = _int(args, "catheter_nl", 0, MAX_CATHETER_NL, "nL")
    th.prime(cath)
    dev.fsm.fire("prime")
    return summary(dev)


def refill(dev, args):
    th = dev.therapy
    if dev.fsm.state == "priming":
        raise CommandError(NOT_ALLOWED, "priming is in progress: refill after it completes")
    cap = dev.hal.capacity_ml * 1000000
    _int(args, "removed_nl", 0, cap, "nL")
    added = _int(args, "added_nl", 1, cap, "nL")
    conc = args.get("concentration")
    if conc not in LIBRARY or isinstance(conc, bool):
        raise CommandError(BAD_ARGUMENT, "concentration %r mcg/mL is not in the drug library (%s mcg/mL)"
                           % (conc, ", ".join(str(c) for c in LIBRARY)))
    th.refill(added, conc)
    return summary(dev)


def clock(dev, args):
    th = dev.therapy
    shift = []
    if args.get("set_s") is not None:
        now = _int(args, "set_s", 0, 0x3FFFFFFF, "seconds since 2000-01-01")
        dev.hal.rtc_set(now)
        th.set_clock(now)
    if args.get("utc_offset_min") is not None:
        new = _int(args, "utc_offset_min", -720, 840, "minutes")
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
