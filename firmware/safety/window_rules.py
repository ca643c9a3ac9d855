"""The limits over rolling 24 h windows (spec §4.1, issue 16): a prescription's own worst 24 h
(a day-specific flex across two days, periodic boluses off the day's grid counted at their maximum)
against every upper limit, as its daily dose; and the titration guard over every window a change
touches: what was delivered (scheduled) in the window before now plus what the new prescription
gives in the rest of it (therapy/schedule.py). Loaded by safety/review.py on its own, before limit_rules.
"""

from therapy import schedule
from safety.limits import window, mcg_text


def check(dev, new, prog):
    """What the limits over rolling 24 h refuse in a change to prog (worst-case daily dose new,
    x1440): a list of (largest daily dose x1440 allowed, limit, override passes, text[, detail]),
    for limit_rules.check to weigh with the others."""
    bad = []
    now = dev.therapy.now_s()
    lo, _ = window(dev.safety.hist, now)
    if prog[0] == "ptm":  # the running prescription with other patient-bolus settings
        ptm = prog[1]
        prog = schedule.current(dev)
        if prog[0] == "s":
            return bad
        prog[-1] = ptm
    lim = dev.safety.lim
    pct = lim["titration"]
    top = schedule.max_window(prog, now)
    if top is not None and top[0] > new * 60 * top[1]:  # more than its daily dose in some 24 h
        m = top[0] * 10 // (top[1] * 86400)  # tenths of a mcg, rounded down
        worst = "the program's worst 24 h gives %s mcg" % _t(m)
        for limit, most, over, skip in (("hard_max", lim["hard_max"] * 1440, False, False),
                                      ("titration", lo * (100 + pct) // 100, False, lo <= 0),
                                      ("initial_cap", lim["initial"] * 1440, True, lo > 0),
                                      ("ceiling", min(lim["ceiling"], lim["hard_max"]) * 1440, True, False)):
            # most: the largest daily dose x1440 the limit allows; exact: 100 x amount against the limit
            cap = lo * (100 + pct) * 60 if limit == "titration" else most * 6000
            if not skip and top[0] * 100 > cap * top[1]:
                bad.append((most, limit, over, "%s: %s, more than the %s mcg a day it allows"
                            % (_NAMES[limit], worst, mcg_text(most))))
    if lo <= 0 or new > lo * (100 + pct) // 100 or [b for b in bad if b[1] == "titration"]:
        return bad  # the titration guard binds on the daily dose already
    allow = (lo * (100 + pct) * 60, 100)  # mcg x 86400 in 24 h
    w = schedule.worst_window(dev, prog, allow, now)
    if w is None:
        return bad
    _, start, before, mine = w
    t_allow, t_before, t_mine = schedule.mcg_tenths(allow), schedule.mcg_tenths(before), schedule.mcg_tenths(mine)
    retry = schedule.fits_in(dev, prog, allow, now)
    bad.append((lo * (100 + pct) // 100, "titration_window", False,
                "titration limit over 24 h: the 24 h starting %s would get %s mcg (%s mcg already given or scheduled "
                "before now, %s mcg from the new program); the %s profile allows %s mcg in any 24 h (the lowest daily "
                "dose in the last 24 h, %s mcg/day, +%d %%), so %s mcg are left in that window; %s"
                % (_ago(now - start), _t(t_before + t_mine), _t(t_before), _t(t_mine), lim["profile"], _t(t_allow),
                   mcg_text(lo), pct, _t(max(0, t_allow - t_before)),
                   "the change fits in %s" % _dur(retry) if retry > 0 else "it does not fit within 24 h at the "
                   "running therapy"),
                {"window_start_s": start, "window_end_s": start + 86400, "allowance_mcg_x10": t_allow,
                 "before_mcg_x10": t_before, "new_mcg_x10": t_mine, "left_mcg_x10": max(0, t_allow - t_before),
                 "retry_in_s": retry, "retry_at_s": now + retry if retry > 0 else None,
                 "utc_offset_min": dev.therapy.offset_min}))
    return bad


_NAMES = {"hard_max": "hard maximum", "titration": "titration limit", "initial_cap": "initial-dose cap",
          "ceiling": "ceiling"}


def _t(tenths):
    return "%d.%d" % (tenths // 10, tenths % 10)


def _dur(s):
    return "%d h" % (s // 3600) if s % 3600 == 0 else "%d h %02d min" % (s // 3600, s % 3600 // 60)


def _ago(s):
    return "now" if s <= 0 else _dur(s) + " ago"
