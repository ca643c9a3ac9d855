"""The scheduled dose of prescriptions over time: what the titration guard's rolling 24 h windows see.

A prescription is a plain list (JSON, so the past survives a power cut):
  ["s"]                                              stopped
  ["c", mcg_per_day, ptm]                            continuous
  ["f", week, offset_min, ptm]                       flex: 7 tuples of (start_min, mcg/day), Monday first
  ["p", basal, bolus_mcg, every_s, over_s, first_s, ptm]   periodic, first bolus at device time first_s
ptm: enabled patient boluses at their maximum, dose x max per day, as a steady mcg/day (the limits'
worst case). Clinician single boluses have their own cap and are not part of it.

Over an interval a schedule is rate steps (flat [t, mcg/day, ...], each rate until the next step)
and bolus trains (flat [start, end, first, every, over, mcg, ...]: boluses at first + k x every,
k >= 0, each delivered evenly over `over` s, counted only within [start, end): a bolus cut by
start or end counts its part inside, so a record closed twice while one prescription runs holds
each bolus once).
Amounts are exact rationals (num, den) in mcg x 86400 (mcg/day x seconds): a bolus cut by a window
edge is a fraction of its dose. Times are device seconds. Only minimum rate, halts and missed
boluses make the pump deliver less than its schedule, so the schedule bounds what was delivered.

dev.safety.past = [from_s, steps, trains, first_s]: the schedule of the last 24 h up to from_s, when the
running prescription started (or its record was last closed); first_s its first periodic bolus.
Loaded only for a dose change (limit_rules) and by the requests that close the record.
"""

DAY_S = 86400
_EPOCH_WEEKDAY = 5  # 2000-01-01 was a Saturday; Monday is day 0
MAX_STEPS = 96  # past rate steps kept (pairs); beyond, neighbours merge at the higher rate
MAX_TRAINS = 8  # past bolus trains kept; beyond, the oldest becomes a steady rate at its bolus rate


# -- rationals -------------------------------------------------------------------------------------
def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def add(x, y):
    n = x[0] * y[1] + y[0] * x[1]
    d = x[1] * y[1]
    g = _gcd(n, d)
    return (n // g, d // g) if g > 1 else (n, d)


def less(x, y):
    return x[0] * y[1] < y[0] * x[1]


def mcg_tenths(x):
    """An amount as whole tenths of a mcg, rounded to nearest (for messages)."""
    return (x[0] * 10 + x[1] * DAY_S // 2) // (x[1] * DAY_S)


# -- prescriptions ---------------------------------------------------------------------------------
def current(dev):
    """The running prescription as a schedule list (therapy, patient boluses, UTC offset)."""
    th = dev.therapy
    ptm = dev.safety.ptm[0] * dev.safety.ptm[2] if dev.safety.ptm else 0
    if th.mode == "continuous":
        return ["c", th.dose, ptm]
    if th.mode == "flex":
        return ["f", th.flex, th.offset_min, ptm]
    if th.mode == "periodic":
        return ["p", th.dose, th.p_dose, th.p_every // 10, th.p_over // 10, dev.safety.past[3], ptm]
    return ["s"]


def expand(prog, a, b):
    """(steps, trains) of a prescription over [a, b)."""
    kind = prog[0]
    if kind == "s":
        return [a, 0], []
    if kind == "c":
        return [a, prog[1] + prog[2]], []
    if kind == "p":
        first = prog[5]
        return [a, prog[1] + prog[6]], [a, b, first, prog[3], prog[4], prog[2]]
    week, off, ptm = prog[1], prog[2] * 60, prog[3]
    local = a + off
    day = local // DAY_S
    sec = local - day * DAY_S
    steps = week[(day + _EPOCH_WEEKDAY) % 7]
    mcg = week[(day + _EPOCH_WEEKDAY + 6) % 7][-1][1]  # before today's first step, yesterday's last
    for m, dose in steps:
        if m * 60 <= sec:
            mcg = dose
    out = [a, mcg + ptm]
    while day * DAY_S - off < b:
        for m, dose in week[(day + _EPOCH_WEEKDAY) % 7]:
            t = day * DAY_S + m * 60 - off
            if a < t < b:
                out.append(t)
                out.append(dose + ptm)
        day += 1
    return out, []


# -- amounts -----------------------------------------------------------------------------------------
def steps_amount(steps, end, a, b):
    """mcg x 86400 of rate steps (valid until end) over [a, b): a whole number."""
    total = 0
    n = len(steps)
    for i in range(0, n, 2):
        lo = max(a, steps[i])
        hi = min(b, steps[i + 2] if i + 2 < n else end)
        if hi > lo:
            total += steps[i + 1] * (hi - lo)
    return total


def train_amount(tr, i, a, b):
    """mcg x 86400 of the bolus train at tr[i:i+6] over [a, b), as (num, den)."""
    start, end, first, every, over, mcg = tr[i], tr[i + 1], tr[i + 2], tr[i + 3], tr[i + 4], tr[i + 5]
    lo = max(a, start)
    hi = min(b, end)
    if hi <= lo:
        return (0, 1)
    k0 = max(0, (lo - over - first) // every + 1)  # first bolus overlapping lo
    k1 = -((first - hi) // every) - 1  # last bolus starting before hi
    if k1 < k0:
        return (0, 1)
    g = first + k0 * every
    secs = min(g + over, hi) - max(g, lo)
    if k1 > k0:
        g = first + k1 * every
        secs += min(g + over, hi) - max(g, lo) + (k1 - k0 - 1) * over
    return (mcg * DAY_S * secs, over)


def amount(parts, a, b):
    """mcg x 86400 over [a, b) of schedule parts: a list of (steps, end, trains), each part valid
    from its first step to its end. Its trains count only there too: a periodic prescription's
    train keeps the grid's first bolus time, which may lie before the part (a prescription
    running since before the record was last closed), and those boluses are the record's."""
    whole = 0
    frac = (0, 1)
    for steps, end, trains in parts:
        whole += steps_amount(steps, end, a, b)
        lo = max(a, steps[0]) if steps else a
        for i in range(0, len(trains), 6):
            frac = add(frac, train_amount(trains, i, lo, b))
    return add((whole, 1), frac)


def edges(parts, lo, hi):
    """Every time in [lo, hi] where the parts' rate changes (a generator: a schedule with a bolus
    every 10 minutes has hundreds, and the heap is small)."""
    for steps, end, trains in parts:
        for i in range(0, len(steps), 2):
            if lo <= steps[i] <= hi:
                yield steps[i]
        if lo <= end <= hi:
            yield end
        for i in range(0, len(trains), 6):
            start, stop, first, every, over = trains[i], trains[i + 1], trains[i + 2], trains[i + 3], trains[i + 4]
            k = max(0, -((first + over - max(start, lo)) // every))  # the first bolus ending at or after both
            g = first + k * every
            while g < stop and g <= hi:
                if lo <= g:
                    yield g
                t = min(g + over, stop)
                if lo <= t <= hi:
                    yield t
                g += every


# -- the record of the past -----------------------------------------------------------------------------
def past_parts(dev, now):
    """The schedule up to now (from 24 h before it): the record, then the running prescription
    since from_s (now may lie ahead: the running one is taken to go on until then)."""
    frm, steps, trains = dev.safety.past[0], dev.safety.past[1], dev.safety.past[2]
    parts = [(steps, frm, trains)] if steps else []
    if frm < now:
        s, t = expand(current(dev), max(frm, now - DAY_S), now)
        parts.append((s, now, t))
    return parts


def _parts(prog, a, b):
    s, t = expand(prog, a, b)
    return [(s, b, t)]


def worst_window(dev, prog, allow, at):
    """The change to prog made at device time `at` (now, or later with the running prescription
    going on until then): the 24 h window it pushes furthest over allow (mcg x 86400, (num, den)),
    as (excess, start, amount before `at`, amount of prog); None when every window fits.

    Windows start at whole seconds s, at - 24 h < s <= at (those wholly after the change are
    max_window's). Each amount is linear in s between the schedules' edges, so the worst window
    starts at an edge (or at the first second). A window is pushed over only when prog gives it
    more than the running prescription would: a change never makes a window worse that was over
    already (after an override, or a decrease)."""
    past = past_parts(dev, at)
    new = _parts(prog, at, at + DAY_S)
    cur = _parts(current(dev), at, at + DAY_S)
    worst = _window_at(past, new, cur, allow, at, at - DAY_S + 1, None)
    worst = _window_at(past, new, cur, allow, at, at, worst)
    for s in edges(past, at - DAY_S + 1, at):
        worst = _window_at(past, new, cur, allow, at, s, worst)
    for t in edges(new, at + 1, at + DAY_S):
        worst = _window_at(past, new, cur, allow, at, t - DAY_S, worst)
    return worst


def _window_at(past, new, cur, allow, at, s, worst):
    """worst_window's verdict on the window starting at s: the worse of it and worst."""
    before = amount(past, s, at)
    mine = amount(new, at, s + DAY_S)
    total = add(before, mine)
    if less(allow, total) and less(amount(cur, at, s + DAY_S), mine):
        over = add(total, (-allow[0], allow[1]))
        if worst is None or less(worst[0], over):
            return (over, s, before, mine)
    return worst


def max_window(prog, now):
    """The most a prescription gives in any 24 h wholly after now (mcg x 86400, (num, den)), when
    that can be more than its daily dose: a day-specific flex (a window across two different days)
    and periodic boluses whose interval does not divide the day (boluses counted at their maximum).
    None for the others: any 24 h of them is the daily dose."""
    if prog[0] == "p":
        span = (prog[5] - now) % prog[3] + prog[3] + DAY_S  # the windows repeat after the next bolus
        if DAY_S % prog[3] == 0:
            return None
    elif prog[0] == "f" and [d for d in prog[1] if d != prog[1][0]]:
        span = 7 * DAY_S
    else:
        return None
    new = _parts(prog, now, now + span + DAY_S)
    best = (0, 1)
    for s in edges(new, now, now + span + DAY_S):
        for w in (s, s - DAY_S):
            if now <= w <= now + span:
                x = amount(new, w, w + DAY_S)
                if less(best, x):
                    best = x
    return best


RETRY_H = (1, 2, 3, 4, 6, 8, 12, 18, 24)


def fits_in(dev, prog, allow, now):
    """Seconds from now until the same change would fit (the running prescription going on until
    then; a periodic one that starts at the commit starts then), looked at after 1 ... 24 h; -1: not
    within 24 h."""
    for h in RETRY_H:
        at = now + h * 3600
        p = prog
        if prog[0] == "p" and prog[5] == now:
            p = prog[:5] + [at] + prog[6:]
        if worst_window(dev, p, allow, at) is None:
            return h * 3600
    return -1


def close(dev, plan=None):
    """The running prescription's schedule up to now goes into the record, before a change of
    prescription or patient boluses (plan: the change's, with its "prog"), clock or UTC offset."""
    now = dev.therapy.now_s()
    past = dev.safety.past
    prog = plan["prog"] if plan else ["ptm"]
    first = prog[5] if prog[0] == "p" else past[3] if prog[0] == "ptm" else None
    frm = past[0]
    steps, trains = past[1], past[2]
    if frm < now:  # (a record older than the window is pruned below)
        s, t = expand(current(dev), max(frm, now - DAY_S), now)
        steps += s
        trains += t
    past[0] = now
    past[3] = first
    _prune(past, now - DAY_S)


def _prune(past, cutoff):
    steps, trains = past[1], past[2]
    i = 0
    while i + 2 < len(steps) and steps[i + 2] <= cutoff:
        i += 2
    del steps[:i]
    j = 0
    while j < len(trains):
        if trains[j + 1] <= cutoff:
            del trains[j:j + 6]
        else:
            j += 6
    while len(trains) > 6 * MAX_TRAINS:  # the oldest train as a steady rate at its bolus rate (more, never less)
        start, end, mcg, over = trains[0], trains[1], trains[5], trains[4]
        _merge_rate(steps, start, end, -(-mcg * DAY_S // over))
        del trains[:6]
    k = 2
    while len(steps) > 2 * MAX_STEPS and k < len(steps):  # neighbours merge at the higher rate
        steps[k - 1] = max(steps[k - 1], steps[k + 1])
        del steps[k:k + 2]
        k += 2


def _merge_rate(steps, start, end, extra):
    """Add extra mcg/day to the steps over [start, end) (end: at most where the record ends)."""
    points = sorted(set([steps[i] for i in range(0, len(steps), 2)] + [start, end]))
    out = []
    for p in points:
        rate = 0
        for i in range(0, len(steps), 2):
            if steps[i] <= p:
                rate = steps[i + 1]
        out += [p, rate + (extra if start <= p < end else 0)]
    steps[:] = out
