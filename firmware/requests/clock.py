"""The clock request: read or set the device clock and the local-time (UTC) offset.

Loaded for the request only; one-phase (no dose changes). A refused request changes nothing.
"""

from safety.field_checks import need_int


def clock(dev, args):
    th = dev.therapy
    shift = []
    # check every field before changing anything
    now = None if args.get("set_s") is None else need_int(args, "set_s", 0, 0x3FFFFFFF, "seconds since 2000-01-01")
    new = None if args.get("utc_offset_min") is None else need_int(args, "utc_offset_min", -720, 840, "minutes")
    if now is not None or new is not None:
        dev.call("therapy.schedule", "close")  # the last 24 h in the old clock and offset
    if now is not None:
        dev.log("clock", (th.now_s(), now))
        _shift(dev, now - th.now_s())
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
        dev.log("utc_offset", (old, new))
    return {"clock": th.now_s(), "utc_offset_min": th.offset_min, "schedule_shift": shift}


def _shift(dev, delta):
    """Setting the clock moves device time, not elapsed time: the 24 h dose history, the patient
    boluses and an auth lockout keep their age."""
    h = dev.safety.hist
    for i in range(0, len(h), 3):
        h[i] += delta
    u = dev.safety.ptm_used
    for i in range(len(u)):
        u[i] += delta
    if dev.session.auth_lock:
        dev.session.auth_lock += delta
    p = dev.safety.past  # the scheduled doses of the last 24 h (therapy/schedule.py)
    p[0] += delta
    for i in range(0, len(p[1]), 2):
        p[1][i] += delta
    for i in range(0, len(p[2]), 6):
        p[2][i] += delta
        p[2][i + 1] += delta
        p[2][i + 2] += delta
    if p[3] is not None:
        p[3] += delta
    dev.session.pending = None


def _hhmm(minutes):
    minutes %= 1440
    return "%02d:%02d" % (minutes // 60, minutes % 60)
