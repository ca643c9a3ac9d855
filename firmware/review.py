"""The review of a change (two-phase programming, spec §4): the current and the new therapy
side by side, the limits' verdict, and what a commit records.

A prepare builds the review and changes nothing; the commit runs the same request again, which
builds the review again: dev.expect then holds what the prepare showed, and a commit whose
review would differ (the 24 h window moved, an alarm came, a bolus ended) is refused.
"""

from alarms import EMPTY_NL
from dates import reaches, volume_x1440
from errors import CommandError, NOT_ALLOWED
from limits import window, record, pct_tenths, mcg_text


def ptm_x1440(ptm):
    """Enabled patient boluses at their maximum, mcg/day x 1440 (ptm: [dose, over_s, per_day, lockout_s])."""
    return ptm[0] * ptm[2] * 1440 if ptm else 0


def current_x1440(dev):
    """The worst-case daily dose in effect now (x1440), -1 when stopped."""
    th = dev.therapy
    return -1 if th.mode == "stopped" else th.daily_x1440 + ptm_x1440(dev.ptm)


def build(dev, cmd, summary, new=None, override=None, stopping=False, after=None):
    """The review; new is the change's worst-case daily dose x1440 (None: the dose stays).

    after = (mode, nL/day x1440 from the reservoir, reservoir nL or None) once applied.
    """
    th = dev.therapy
    warnings, used = [], []
    if new is not None:
        from limit_rules import check  # only a dose change needs the rules

        warnings, used = check(dev, new, override, stopping)
    lo, hi = window(dev.hist, th.now_s())
    cur = current_x1440(dev)
    if new is None:
        new = cur
    if after is None:
        after = (th.mode, volume_x1440(dev), None)
    out = {"review": True, "cmd": cmd, "summary": summary,
           "current": _side(dev, th.mode, cur, volume_x1440(dev), None),
           "new": _side(dev, after[0], new, after[1], after[2]),
           "reference": {"min_mcg": _mcg(lo), "max_mcg": _mcg(hi)},
           "change_tenths_pct": pct_tenths(max(new, 0), lo) if lo > 0 else None,
           "warnings": warnings, "overrides": [{"limit": u[0], "text": u[1]} for u in used]}
    seen = "%s|%d|%s|%s" % (summary, new, warnings, [u[0] for u in used])
    if dev.expect is not None and seen != dev.expect:
        raise CommandError(NOT_ALLOWED, "the pump's situation changed since the review (limits, alarms or "
                           "therapy moved on): nothing applied; prepare the change again")
    dev.fp = seen
    return out


def _mcg(x):
    return None if x < 0 else (x + 720) // 1440


def _side(dev, mode, x, per_day, reservoir):
    return {"mode": mode, "daily_dose_mcg": _mcg(x) or 0, "rate_nl_per_day": per_day // 1440,
            "alarm_date": reaches(dev, dev.low_reservoir_nl, per_day, reservoir),
            "refill_date": reaches(dev, EMPTY_NL, per_day, reservoir)}


def applied(dev, rv, reason=None, new=None):
    """After a commit applied the change: record the new daily dose in the 24 h history, log
    every override with its reason and every warning; the answer to the commit."""
    if new is not None:
        record(dev.hist, dev.therapy.now_s(), new)
    for o in rv["overrides"]:
        dev.log("override", "%s at %s mcg/day" % (o["limit"], mcg_text(max(new or 0, 0))))
        for i in range(0, len(reason or ""), 40):
            dev.log("reason", reason[i:i + 40])
    for w in rv["warnings"]:
        dev.log("warning", w)
    out = dev.summary()
    out["warnings"] = rv["warnings"]
    out["overrides"] = rv["overrides"]
    return out
