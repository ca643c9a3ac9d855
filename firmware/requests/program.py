"""The program request: check a prescription field by field, then hand it to the engine.

Loaded for the request only (device._on_demand). A refusal names the field,
the limit and the value before anything changes; then the safety limits on the
daily dose (safety/limits.py, through safety/review.py) decide.
"""

from therapy import units
from therapy.units import DS_PER_DAY, MIN_PER_DAY, MAX_FLEX_STEPS
from core.errors import CommandError, BAD_ARGUMENT, NOT_ALLOWED
from safety.field_checks import DAYS, MAX_BOLUS_S, DOSE_FIELD_MAX_MCG, need_int, need_drug, check_rate, check_total, concs_ahead, override_reason, refused, state_words
from safety.limits import mcg_text, ptm_x1440
from safety.committed import applied


def _flex_day(name, steps, concs):
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
        start = need_int({"step_start_min": step[0]}, "step_start_min", 0, 1439, "minutes after midnight")
        mcg = need_int({"step_dose_mcg": step[1]}, "step_dose_mcg", 1, DOSE_FIELD_MAX_MCG, "mcg/day")
        if start <= last:
            raise CommandError(BAD_ARGUMENT, "flex steps of %s must start at increasing times (%02d:%02d after %02d:%02d)"
                               % (name, start // 60, start % 60, last // 60, last % 60))
        check_rate("flex step dose", mcg, concs, "step_dose_mcg")
        last = start
        out.append((start, mcg))
    return tuple(out)


def program(dev, args):
    """Check a prescription field by field: the plan (safety/review.py reviews it, apply() applies
    it on a commit); nothing changes here. Each mode has its own small function (small
    bytecode blocks load into a fragmented heap where one large one would not)."""
    mode = args.get("mode")
    if mode == "stop":
        return _stop(dev, args)
    plan = _MODES.get(mode)
    if plan is None:
        raise CommandError(BAD_ARGUMENT, "mode must be one of continuous, flex, periodic, stop; got %r" % (mode,))
    state = dev.fsm.state
    if state == "priming":
        raise CommandError(NOT_ALLOWED, "priming is in progress: program after it completes (or stop it)")
    if state in ("minimum_rate", "alarm_critical"):
        raise CommandError(NOT_ALLOWED, "the pump is %s: clear its cause before programming (stop is allowed)"
                           % state_words(state))
    for code in ("empty_reservoir", "battery_fault"):
        if code in dev.alarms.active:
            raise CommandError(NOT_ALLOWED, "%s alarm: the pump can only keep the minimum rate (%s)"
                               % (code.replace("_", " "), "refill first" if code == "empty_reservoir" else "replace the pump"))
    th = dev.therapy
    need_drug(th)
    reason = override_reason(args, "override")
    x, how, prog = plan(th, args, concs_ahead(th), th.b_rate if th.b_end >= 0 else 0)
    prog.append(ptm_x1440(dev.safety.ptm) // 1440)  # the schedule (therapy/schedule.py) with the patient boluses
    return {"cmd": "program", "summary": "%s %s mcg/day" % (mode, mcg_text(x)),
            "new": x + ptm_x1440(dev.safety.ptm), "reason": reason, "after": (mode, x * (1000000 // th.conc), None),
            "x": x, "how": how, "prog": prog}


def apply(dev, plan, rv):
    """The commit: the reviewed prescription into the engine, logged with old and new."""
    th = dev.therapy
    old = th.daily_x1440
    th_mode = th.mode
    if plan.get("stopping"):
        th.stop()
        if dev.fsm.can("stop"):
            dev.fsm.fire("stop")
        dev.log("program", (old, 0), th_mode + " stopped", plan["reason"])  # whole: one entry
        return applied(dev, rv, plan["reason"], -1)
    how = plan["how"]
    how[0](*how[1:])
    th.daily_x1440 = plan["x"]
    if dev.fsm.can("program"):
        dev.fsm.fire("program")
    dev.log("program", (old, th.daily_x1440), th_mode + " " + th.mode)
    return applied(dev, rv, plan["reason"], plan["new"])


def _stop(dev, args):
    if args.get("reason") is None:
        raise CommandError(BAD_ARGUMENT, "stopping therapy needs a reason (withdrawal risk)")
    return {"cmd": "program", "summary": "stop", "new": 0, "reason": override_reason(args, "reason"),
            "stopping": True, "after": ("stopped", 0, None), "prog": ["s"]}


def _continuous(th, args, concs, running_bolus):
    mcg = need_int(args, "dose_mcg", 1, DOSE_FIELD_MAX_MCG, "mcg/day")
    check_total(check_rate("dose", mcg, concs, "dose_mcg") + running_bolus, "this dose with the running bolus")
    return mcg * 1440, (th.program_continuous, mcg), ["c", mcg]


def _flex_week(days, concs):
    if not isinstance(days, dict):
        raise CommandError(BAD_ARGUMENT, "flex needs 'days': {'all': [...]} or one list per weekday")
    if "all" in days:
        if len(days) != 1:
            raise CommandError(BAD_ARGUMENT, "flex 'all' cannot be combined with weekday schedules")
        return (_flex_day("all", days["all"], concs),) * 7
    missing = [d for d in DAYS if d not in days]
    extra = [k for k in days if k not in DAYS]
    if missing or extra:
        raise CommandError(BAD_ARGUMENT, "day-specific flex needs all seven days mon..sun; missing: %s%s"
                           % (", ".join(missing) or "none", extra and "; unknown: " + ", ".join(extra) or ""))
    return tuple(_flex_day(d, days[d], concs) for d in DAYS)


def _flex(th, args, concs, running_bolus):
    week = _flex_week(args.get("days"), concs)
    top = 0
    for day in week:
        for _, mcg in day:
            top = max(top, mcg)
    check_total(check_rate("flex step dose", top, concs) + running_bolus, "this schedule with the running bolus")
    return flex_daily_x1440(week), (th.program_flex, week), ["f", week, th.offset_min]


def _periodic(th, args, concs, running_bolus):
    basal = need_int(args, "basal_mcg", 1, DOSE_FIELD_MAX_MCG, "mcg/day")
    bolus = need_int(args, "bolus_mcg", 1, DOSE_FIELD_MAX_MCG, "mcg")
    every = need_int(args, "every_s", 600, 7 * 86400, "seconds")
    over = need_int(args, "over_s", 1, MAX_BOLUS_S, "seconds")
    if over >= every:
        raise CommandError(BAD_ARGUMENT, "over_s %d must be shorter than every_s %d" % (over, every),
                           refused("over_s", over, 1, every - 1, "seconds"))
    rate = check_rate("basal", basal, concs, "basal_mcg")
    worst = 0
    for conc in concs:
        worst = max(worst, units.bolus_rate(bolus * units.nl_per_mcg(conc), over * 10)[0])
    check_total(rate + worst + running_bolus, "basal + periodic bolus (with any running bolus)")
    # boluses per day = 86400 / every: in mcg/day * 1440, bolus * 1440 * 86400 / every, rounded up
    # (the limits count boluses at their maximum)
    first = _first_bolus_in(th, args)
    return (basal * 1440 - (-bolus * 124416000 // every),
            (th.program_periodic, basal, bolus, every * 10, over * 10, first),
            ["p", basal, bolus, every, over, (th.base_s * 10 + th.t + first) // 10])


def _first_bolus_in(th, args):
    """Deciseconds until the first periodic bolus: now (at the whole second), or the next
    start_min local time. Boluses start at whole device seconds (therapy/schedule.py counts in seconds)."""
    if args.get("start_min") is None:
        return (10 - th.t % 10) % 10
    start = need_int(args, "start_min", 0, 1439, "minutes after midnight")
    local = th.now_s() + th.offset_min * 60
    first = ((start * 60 - local % 86400) % 86400) * 10 - th.t % 10
    return first + DS_PER_DAY if first < 0 else first


_MODES = {"continuous": _continuous, "flex": _flex, "periodic": _periodic}


def flex_daily_x1440(days):
    """Largest day's time-weighted dose of a flex schedule, in mcg/day * 1440 (exact).

    Before a day's first step, the previous day's last step goes on.
    """
    best = 0
    for i in range(7):
        steps = days[i]
        total = days[(i + 6) % 7][-1][1] * steps[0][0]
        for j in range(len(steps)):
            end = steps[j + 1][0] if j + 1 < len(steps) else MIN_PER_DAY
            total += steps[j][1] * (end - steps[j][0])
        if total > best:
            best = total
    return best
