"""The safety limits' data (spec §4): settings, profiles, and the 24 h history of daily doses.

PROFILES, defaults() and the percentages below are the one place of these facts: the host reads them
as data (host_tools/pump_facts.py), tests/test_one_place.py checks the docs against them.

The rules that judge a new dose are safety/limit_rules.py (loaded only for a dose change). Doses here
are mcg/day x 1440 (exact for flex and periodic schedules), times device seconds.

dev.safety.hist holds the daily doses in effect, oldest first, as a flat list [t, lo, hi, ...]: the
dose that began at t (lo = hi = its worst-case daily dose, -1 when stopped) lasts until the next
entry's t. A dose counts for the window when it was in effect for some time after now - 24 h; a
dose that ended exactly 24 h ago, or lasted no time at all, does not. The history holds at most
MAX_HIST entries: a dose change that would need more is refused until the oldest leaves the window
(full_until), so the window is always exact. (lo and hi are kept apart for the file format.)
"""

DAY_S = 86400
MAX_HIST = 32
# profile: (lowest, highest, default) titration limit in % per 24 h (Saulino 2016)
PROFILES = {"spinal": (10, 30, 30), "cerebral": (5, 15, 15), "pediatric": (5, 15, 15)}
DECREASE_PCT = 20  # a larger drop in 24 h needs an override (withdrawal)
HIGH_DOSE_MCG = 500  # at or above this, increases > HIGH_STEP_PCT warn
HIGH_STEP_PCT = 20


def defaults():
    """A new pump's limits (and a pump's without a valid state copy): mcg/day, the bolus cap mcg.
    A literal, so the host reads it as data (host_tools/pump_facts.py) and the board keeps no copy."""
    return {"profile": "spinal", "titration": 30, "initial": 200, "ceiling": 1000,
            "hard_max": 2000, "bolus_cap": 100}


def high_step(lo, new):
    """The high-dose warning's rule: new (x1440) more than HIGH_STEP_PCT over lo, the lowest daily
    dose of the last 24 h, when lo is HIGH_DOSE_MCG or more (limit_rules warns, committed logs)."""
    return lo >= HIGH_DOSE_MCG * 1440 and new * 100 > lo * (100 + HIGH_STEP_PCT)


def window(hist, now):
    """(lowest, highest) daily dose x1440 in effect during the last 24 h; -1 for none."""
    lo = hi = -1
    n = len(hist)
    for i in range(0, n, 3):
        end = hist[i + 3] if i + 3 < n else now + 1
        if end <= now - DAY_S or end <= hist[i]:
            continue
        if hist[i + 1] >= 0 and (lo < 0 or hist[i + 1] < lo):
            lo = hist[i + 1]
        if hist[i + 2] > hi:
            hi = hist[i + 2]
    return lo, hi


def _first_kept(hist, now):
    """Index of the oldest dose still counting: those before it ended at or before now - 24 h
    (the one in effect at the window's start stays)."""
    n = len(hist)
    i = 0
    while n - i >= 6 and hist[i + 3] <= now - DAY_S:
        i += 3
    return i


def prune(hist, now):
    """Drop the doses that left the window."""
    del hist[0:_first_kept(hist, now)]


def full_until(hist, now):
    """0 when a dose change now fits the history; else the device time it will (when enough of
    the oldest have left the window). Nothing is merged or cut short: that could show a reference
    the exact history has not, and let a restart escape the initial-dose cap. limit_rules refuses
    the change instead. Reads only: a refused request leaves the history as it was."""
    n = len(hist)
    i = _first_kept(hist, now)
    kept = (n - i) // 3
    if kept + (0 if n and hist[-3] >= now else 1) <= MAX_HIST:  # (a change at the same second replaces)
        return 0
    return hist[i + 3 * (kept + 1 - MAX_HIST)] + DAY_S  # (then no longer the same second)


def record(hist, now, dose):
    """A new daily dose (x1440, -1: stopped) takes effect now. A stop is recorded even when the
    history is full: MAX_HIST + 1 entries at most, as a dose change needs room and a stop while
    stopped adds nothing."""
    prune(hist, now)
    if dose < 0 and hist and hist[-2] < 0:
        return
    if hist and hist[-3] >= now:
        del hist[-3:]  # the previous dose lasted no time: it never was in effect
    hist.extend((now, dose, dose))


def mcg_text(x):
    """mcg/day x 1440 as text: whole, or to one decimal."""
    if x % 1440 == 0:
        return "%d" % (x // 1440)
    t = (x * 10 + 720) // 1440
    return "%d.%d" % (t // 10, t % 10)


def pct_tenths(new, ref):
    """Change of new against ref in tenths of a percent, rounded toward zero."""
    d = abs(new - ref) * 1000 // ref
    return d if new >= ref else -d


def pct_text(tenths):
    return "%s%d.%d %%" % ("+" if tenths >= 0 else "-", abs(tenths) // 10, abs(tenths) % 10)


def ptm_x1440(ptm):
    """Enabled patient boluses at their maximum, mcg/day x 1440 (ptm: [dose, over_s, per_day, lockout_s])."""
    return ptm[0] * ptm[2] * 1440 if ptm else 0
