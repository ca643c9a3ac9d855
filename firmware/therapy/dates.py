"""When the reservoir reaches a level: the low-reservoir alarm date and the refill-by date, of the
therapy running now (status) and of a review's new side.

The pump's real schedule, not the day's average (issue 11): the prescription as therapy/schedule.py expands
it (flex steps, periodic boluses, patient boluses at their maximum as a steady rate), a clinician
bolus still running, the bridge (the old concentration until the dead volume is pushed), priming
(the dead volume first at the maximum rate, the therapy paused); at minimum rate the minimum rate,
halted nothing. A level is reached at the stroke that takes the reservoir to it or below: the n-th
stroke from now falls when the volume programmed since now reaches n x 250 nL less the fraction of
a stroke already in the accumulator (therapy/stroke_timing.py). The walk skips whole periods at once (a day, a
week for day-specific flex, the interval of periodic boluses) and walks segment by segment within
the last: a few dozen steps, whatever the horizon. Integers only (exact rationals for boluses cut
by a segment edge).

Kept, not computed per status: dev.alarms.dates = [alarm_s, refill_s, due] is filled by keep() when
Device.service finds it due, and whatever changes the therapy, the reservoir or a threshold marks
it due (Device._on_demand after a change, Device._therapy_events, alarm_rules._apply). Between
changes the pump follows its schedule, so the kept dates stay true: status reads two numbers.
"""

from alarms.catalogue import EMPTY_NL
from therapy.units import STROKE_NL, MAX_RATE_NL, MIN_RATE_NL, TUBING_NL

_U_STROKE = STROKE_NL * 86400  # a stroke in nL x 86400 (nL/day x s, the unit of the walk)
DAY_S = 86400


def keep(dev):
    """The dates of the therapy as it runs now, into dev.alarms.dates (Device.service, after a change):
    in place, so nothing allocated here outlives the call (the heap does not fragment)."""
    d = dev.alarms.dates
    try:
        d[0], d[1] = _both(dev, _running(dev))
    except Exception:  # noqa: BLE001 - a prediction must not take delivery down: no dates shown
        d[0] = d[1] = None
    d[2] = False


def sides(dev, plan, rv):
    """The review's dates (Device.change, after review.build): now's as kept, and once the plan
    is applied."""
    now = dev.alarms.dates
    rv["current"]["alarm_date"], rv["current"]["refill_date"] = now[0], now[1]
    rv["new"]["alarm_date"], rv["new"]["refill_date"] = _both(dev, _planned(dev, plan))


def _both(dev, sit):
    return [_date(sit, dev.safety.low_reservoir_nl), _date(sit, EMPTY_NL)]


# -- the situation the walk starts from ------------------------------------------------------------
# [now, reservoir nL, a fixed rate nL/day (minimum rate, halt) or None: the schedule, prog, extra
#  bolus train, acc (nL x 86400), nL/mcg, bridge nL, its nL/mcg, priming strokes, their acc]

def _running(dev, conc=0, minimum=None):
    """The therapy as it runs now (conc, minimum: as they will be after a refill)."""
    th = dev.therapy
    conc = conc or th.conc
    sit = [th.now_s(), th.reservoir_nl, None, None, [], th.d.acc // 10, 1000000 // conc if conc else 0,
           th.bridge_left, 1000000 // th.bridge_conc if th.bridge_left else 0, 0, 0]
    if th.halted or not conc:
        sit[2] = 0
    elif th.priming:  # the rest of the priming first, the therapy's accumulator after it
        sit[9], sit[10], sit[5] = th.priming, sit[5], th.saved_acc // 10
    elif th.minimum if minimum is None else minimum:
        sit[2] = MIN_RATE_NL
    if sit[2] is None:
        from therapy import schedule

        prog = schedule.current(dev)
        if prog[0] == "p":  # the engine's bolus grid (a bolus running; boluses skipped while held)
            nxt = th.base_s + th.p_next // 10
            prog[5] = nxt - prog[3] if th.p_end >= 0 else nxt
        sit[3] = prog
        if th.b_end >= 0:  # a clinician or patient bolus running: the rest of it
            sit[4] = _bolus(th.base_s + th.b_start // 10, (th.b_end - th.b_start) // 10, th.b_dose)
    return sit


def _bolus(start, over, mcg):
    """One bolus as a therapy/schedule.py train."""
    return [start, start + over, start, over, over, mcg]


def _planned(dev, plan):
    """The situation once the plan is applied, from the keys the request modules put in it:
    "prog" (program: the new schedule; ptm: ["ptm", mcg/day]), "after" (its third item: the
    reservoir, None: unchanged), "conc" (refill), "cath" (prime), "mcg" and "over" (bolus)."""
    th = dev.therapy
    cmd = plan["cmd"]
    if cmd == "refill":  # the empty reservoir clears, a battery fault stays
        sit = _running(dev, plan["conc"], th.minimum and "battery_fault" in dev.alarms.active)
        if th.conc and plan["conc"] != th.conc:  # a new bridge: the drug leaving the catheter now first
            sit[7], sit[8] = TUBING_NL + th.catheter_nl, 1000000 // th.conc_now()
    else:
        sit = _running(dev)
    res = plan.get("after", (0, 0, None))[2]
    if res is not None:
        sit[1] = res
    prog = plan.get("prog")
    if sit[2] is None and prog:
        if prog[0] == "ptm":  # the same prescription with the new patient boluses
            prog = sit[3] if sit[3][0] == "s" else sit[3][:-1] + [prog[1]]
        sit[3] = prog
    if cmd == "bolus":
        sit[4] = _bolus(sit[0], plan["over"], plan["mcg"])
    elif cmd == "prime" and sit[2] is None:  # the dead volume first at the maximum rate; boluses end
        sit[9], sit[10], sit[4] = -(-(plan["cath"] + TUBING_NL) // STROKE_NL), 0, []
        sit[7] = min(sit[7], TUBING_NL)
        if sit[3][0] == "p":
            sit[3][5] = th.base_s + th.p_next // 10
    return sit


# -- the walk --------------------------------------------------------------------------------------
def _date(sit, level):
    """Device time of the stroke that takes the reservoir to level or below (now if it is there);
    None when it never comes (nothing is delivered)."""
    now, res, fixed, prog, extra, acc, npm, bridge, npm_old, prime, prime_acc = sit
    if fixed == 0 or (fixed is None and prog[0] == "s" and not extra and not prime):
        return None
    if res <= level:
        return now
    n = -(-(res - level) // STROKE_NL)
    if fixed is not None:
        return now + _ceil(n * _U_STROKE - acc, fixed)
    t = now
    if prime:  # priming strokes at the maximum rate come first
        if n <= prime:
            return now + _ceil(n * _U_STROKE - prime_acc, MAX_RATE_NL)
        t = now + _ceil(prime * _U_STROKE - prime_acc, MAX_RATE_NL)
        n -= prime
    if bridge:
        k = -(-bridge // STROKE_NL)
        if n <= k:
            return _walk(prog, extra, t, n * _U_STROKE - acc, npm_old)
        t = _walk(prog, extra, t, k * _U_STROKE - acc, npm_old)
        if t is None:
            return None
        n -= k
        acc = 0
    return _walk(prog, extra, t, n * _U_STROKE - acc, npm)


def _ceil(a, b):
    return -(-a // b)


def _walk(prog, extra, a, need, npm):
    """First device second from a at which prog (and the extra bolus train) has taken need
    (nL x 86400) at npm nL/mcg; None if never."""
    from therapy import schedule

    if need <= 0:
        return a
    kind = prog[0]
    if kind == "s" and not extra:
        return None
    period = DAY_S
    head = a
    if kind == "p":
        period = prog[3]
        head = max(a, prog[5])  # from its first bolus on, the schedule repeats every interval
    elif kind == "f" and [d for d in prog[1] if d != prog[1][0]]:
        period = 7 * DAY_S  # day-specific flex repeats weekly
    if extra:
        head = max(head, extra[1])
    need = (need, 1)
    if head > a:
        t, need = _within(prog, extra, a, head, need, npm)
        if t is not None or kind == "s":
            return t
        a = head
    # whole periods at once: any `period` from a takes the same amount
    amt = schedule.amount(_parts(prog, a, a + period), a, a + period)
    unit = amt[0] * npm  # (unit / amt[1]) nL x 86400 per period
    if unit <= 0:
        return None
    k = (need[0] * amt[1] - 1) // (unit * need[1])  # periods that leave some of need for the last one
    if k > 0:
        a += k * period
        need = schedule.add(need, (-k * unit, amt[1]))
    return _within(prog, [], a, a + period, need, npm)[0]


def _parts(prog, a, b):
    from therapy import schedule

    s, t = schedule.expand(prog, a, b)
    return [(s, b, t)]


def _within(prog, extra, a, b, need, npm):
    """(time need is reached in [a, b], None) or (None, what is left of need): segment by segment,
    each at one rate (steps and boluses change only at the edges)."""
    from therapy import schedule

    steps, trains = schedule.expand(prog, a, b)
    parts = [(steps, b, trains + extra)]
    edges = set(schedule.edges(parts, a, b))
    edges.add(a)
    edges.add(b)
    edges = sorted(edges)
    j = 0
    for i in range(len(edges) - 1):
        s0, s1 = edges[i], edges[i + 1]
        if s0 < a:
            continue
        if s1 > b:
            break
        while j + 2 < len(steps) and steps[j + 2] <= s0:
            j += 2
        x = (steps[j + 1] * (s1 - s0), 1)
        for tr in (trains, extra):
            for k in range(0, len(tr), 6):
                x = schedule.add(x, schedule.train_amount(tr, k, s0, s1))
        got = (x[0] * npm, x[1])
        if not schedule.less(got, need):  # reached in this segment, at one rate: exactly where
            return s0 + _ceil(need[0] * x[1] * (s1 - s0), need[1] * got[0]), None
        need = schedule.add(need, (-got[0], got[1]))
    return None, need

