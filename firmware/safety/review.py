"""The review of a change (two-phase programming, spec §4): the current and the new therapy
side by side, and the limits' verdict. Loaded on its own, between the request module's check
(the plan) and, on a commit, its apply: the three never share the heap.

A prepare builds the review and changes nothing; the commit runs the same request again, which
checks every limit again (a limit that binds now refuses it, code 11) and builds the review again:
dev.session.expect then holds what the prepare showed, and a commit whose review would differ (the 24 h
references moved, a warning came or went) is refused (code 9).
"""

from core.errors import CommandError, NOT_ALLOWED
from safety.limits import window, pct_tenths, ptm_x1440


def current_x1440(dev):
    """The worst-case daily dose in effect now (x1440), -1 when stopped."""
    th = dev.therapy
    return -1 if th.mode == "stopped" else th.daily_x1440 + ptm_x1440(dev.safety.ptm)


def build(dev, plan):
    """The review of a plan (what a request module's check returned, nothing applied yet).

    plan: "cmd", "summary"; "new": the change's worst-case daily dose x1440 (absent: the dose
    stays), "prog": its schedule (therapy/schedule.py, for the rolling 24 h windows and the dates), "reason"
    (the override), "stopping"; "after": (mode, average nL/day x1440 from the reservoir, reservoir
    nL or None) once applied; "extra": keys for the new side; "warnings". The sides' alarm and
    refill dates come after, from dates.sides (its own load: see Device.change).
    """
    th = dev.therapy
    new = plan.get("new")
    summary = plan["summary"]
    warnings, used = [], []
    if new is not None:
        prog = plan.get("prog")
        stopping = plan.get("stopping", False)
        windows = dev.call("safety.window_rules", "check", new, prog) if prog and not stopping else ()
        from safety.limit_rules import check  # only a dose change needs the rules

        warnings, used = check(dev, new, plan.get("reason"), stopping, windows)
    warnings = plan.get("warnings", []) + warnings
    after = plan.get("after")
    lo, hi = window(dev.safety.hist, th.now_s())
    cur = current_x1440(dev)
    if new is None:
        new = cur
    if after is None:
        after = (th.mode, volume_x1440(dev), None)
    # each side's alarm and refill dates: dates.sides, loaded after this module (Device.change)
    out = {"review": True, "cmd": plan["cmd"], "serial": dev.identity(), "summary": summary,
           "current": _side(th.mode, cur, volume_x1440(dev)),
           "new": _side(after[0], new, after[1]),
           "reference": {"min_mcg": _mcg(lo), "max_mcg": _mcg(hi)},
           "change_tenths_pct": pct_tenths(max(new, 0), lo) if lo > 0 else None,
           "warnings": warnings, "overrides": [{"limit": u[0], "text": u[1]} for u in used],
           "utc_offset_min": th.offset_min}  # the host shows the dates in the pump's local time
    out["new"].update(plan.get("extra", {}))
    seen = "%s|%d|%s|%s|%s|%s" % (summary, new, warnings, [u[0] for u in used], out["reference"],
                                  out["change_tenths_pct"])
    if dev.session.expect is not None and seen != dev.session.expect:
        raise CommandError(NOT_ALLOWED, "the pump's situation changed since the review (limits, alarms or "
                           "therapy moved on): nothing applied; prepare the change again")
    dev.session.fp = seen
    return out


def _mcg(x):
    return None if x < 0 else (x + 720) // 1440


def _side(mode, x, per_day):
    return {"mode": mode, "daily_dose_mcg": _mcg(x) or 0, "rate_nl_per_day": per_day // 1440,
            "alarm_date": None, "refill_date": None}  # (dates.sides fills them in)


def volume_x1440(dev):
    """nL/day x 1440 the pump takes from the reservoir on average (the side's mL/day): the
    prescription's average, or the rate delivered now in minimum rate and halt; 0 when nothing
    is delivered."""
    th = dev.therapy
    if th.halted or th.minimum:
        return th.d.rate * 1440
    if th.mode == "stopped" or not th.conc:
        return 0
    return th.daily_x1440 * (1000000 // th.conc)
