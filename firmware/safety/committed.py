"""What every commit records after its change is applied: the daily dose in the 24 h history,
each override with its whole reason and a high-dose warning in the event log (one entry each);
the commit's answer."""

from safety.limits import record, window, high_step, HIGH_STEP_PCT, HIGH_DOSE_MCG


def applied(dev, rv, reason=None, new=None):
    """new: the worst-case daily dose x1440 now in effect (-1: stopped; None: unchanged)."""
    if new is not None:
        now = dev.therapy.now_s()
        lo = window(dev.safety.hist, now)[0]
        record(dev.safety.hist, now, new)
        if high_step(lo, new):
            dev.log("high_dose", (new, lo, HIGH_STEP_PCT, HIGH_DOSE_MCG))
    for o in rv["overrides"]:
        dev.log("override", (-1 if new is None else new,), o["limit"], reason or "")
    out = dev.summary()
    out["warnings"] = rv["warnings"]
    out["overrides"] = rv["overrides"]
    return out
