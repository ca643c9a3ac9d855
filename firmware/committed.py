"""What every commit records after its change is applied: the daily dose in the 24 h history,
each override with its whole reason and each warning in the event log (one entry each); the
commit's answer."""

from limits import record, mcg_text


def applied(dev, rv, reason=None, new=None):
    """new: the worst-case daily dose x1440 now in effect (-1: stopped; None: unchanged)."""
    if new is not None:
        record(dev.hist, dev.therapy.now_s(), new)
    for o in rv["overrides"]:
        dev.log("override", "%s at %s; reason: %s" % (o["limit"], "stop" if new == -1 else mcg_text(new or 0)
                                                      + " mcg/day", reason or "-"))
    for w in rv["warnings"]:
        dev.log("warning", w)
    out = dev.summary()
    out["warnings"] = rv["warnings"]
    out["overrides"] = rv["overrides"]
    return out
