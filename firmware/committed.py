"""What every commit records after its change is applied: the daily dose in the 24 h history,
each override with its reason and each warning in the event log; the commit's answer."""

from limits import record, mcg_text


def log_reason(dev, reason):
    """A reason in full, as many 40-byte log entries as it takes (at most 5: 200 characters)."""
    for i in range(0, len(reason or ""), 40):
        dev.log("reason", reason[i:i + 40])


def applied(dev, rv, reason=None, new=None):
    """new: the worst-case daily dose x1440 now in effect (-1: stopped; None: unchanged)."""
    if new is not None:
        record(dev.hist, dev.therapy.now_s(), new)
    for o in rv["overrides"]:
        dev.log("override", "%s at %s" % (o["limit"], "stop" if new == -1 else mcg_text(new or 0) + " mcg/day"))
        log_reason(dev, reason)
    for w in rv["warnings"]:
        dev.log("warning", w)
    out = dev.summary()
    out["warnings"] = rv["warnings"]
    out["overrides"] = rv["overrides"]
    return out
