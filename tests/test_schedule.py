"""schedule.py: the scheduled dose of a prescription over any interval, second by second.

The references integrate the rate second by second with exact fractions (each second runs the
rate in effect at its middle: every edge is a whole second), independently of the closed forms
the firmware uses for bolus trains and flex days.
"""

from __future__ import annotations

from fractions import Fraction

from therapy import schedule
from hypothesis import given, settings
from hypothesis import strategies as st

DAY = 86_400
MONDAY = 11 * DAY  # 2000-01-10 00:00 UTC was a Monday


def rate_at(prog: list, t: Fraction) -> Fraction:
    """mcg/day at device time t, from the prescription's definition (spec §3)."""
    kind = prog[0]
    if kind == "c":
        return Fraction(prog[1] + prog[2])
    if kind == "p":
        basal, mcg, every, over, first, ptm = prog[1:7]
        r = Fraction(basal + ptm)
        if t >= first and (t - first) % every < over:
            r += Fraction(mcg * DAY, over)
        return r
    week, off, ptm = prog[1], prog[2], prog[3]
    local = t + off * 60
    minute = int(local // 60)
    day, m = divmod(minute, 1440)
    wd = (day + 5) % 7
    todays = [d for s, d in week[wd] if s <= m]
    return Fraction((todays[-1] if todays else week[(wd + 6) % 7][-1][1]) + ptm)


def reference(prog: list, a: int, b: int) -> Fraction:
    return sum((rate_at(prog, Fraction(2 * t + 1, 2)) for t in range(a, b)), Fraction(0))


def firmware(prog: list, a: int, b: int, x: int, y: int) -> Fraction:
    steps, trains = schedule.expand(prog, a, b)
    num, den = schedule.amount([(steps, b, trains)], x, y)
    return Fraction(num, den)


flex_day = st.lists(st.tuples(st.integers(0, 1439), st.integers(1, 900)), min_size=1, max_size=4,
                    unique_by=lambda s: s[0]).map(lambda d: tuple(sorted(d)))


@st.composite
def prescriptions(draw):
    kind = draw(st.sampled_from("cfp"))
    ptm = draw(st.sampled_from([0, 0, 40]))
    if kind == "c":
        return ["c", draw(st.integers(1, 2000)), ptm]
    if kind == "f":
        week = (draw(flex_day),) * 7 if draw(st.booleans()) else tuple(draw(flex_day) for _ in range(7))
        return ["f", week, draw(st.sampled_from([0, 60, -300, 330])), ptm]
    every = draw(st.integers(600, 3 * 3600))
    return ["p", draw(st.integers(1, 500)), draw(st.integers(1, 50)), every, draw(st.integers(1, every - 1)),
            MONDAY + draw(st.integers(-2 * every, 2 * every)), ptm]


@settings(max_examples=40, deadline=None)
@given(prescriptions(), st.integers(0, 2 * DAY), st.integers(60, 5 * 3600), st.data())
def test_amount_over_any_interval_is_the_second_by_second_integral(prog, a0, length, data):
    a, b = MONDAY + a0, MONDAY + a0 + length
    x = data.draw(st.integers(a, b), label="x")
    y = data.draw(st.integers(x, b), label="y")
    assert firmware(prog, a, b, x, y) == reference(prog, x, y) * 1  # mcg/day x s = mcg x 86400


@settings(max_examples=25, deadline=None)
@given(prescriptions(), st.integers(0, DAY))
def test_edges_are_every_rate_change(prog, a0):
    a, b = MONDAY + a0, MONDAY + a0 + 6 * 3600
    steps, trains = schedule.expand(prog, a, b)
    found = set(schedule.edges([(steps, b, trains)], a, b))
    changes = {t for t in range(a + 1, b) if rate_at(prog, Fraction(2 * t - 1, 2)) != rate_at(prog, Fraction(2 * t + 1, 2))}
    assert changes <= found


def test_a_bolus_cut_by_a_window_counts_its_share():
    prog = ["p", 0, 10, 4 * 3600, 900, MONDAY, 0]  # 10 mcg over 15 min every 4 h
    assert firmware(prog, MONDAY, MONDAY + DAY, MONDAY, MONDAY + DAY) == 60 * DAY
    assert firmware(prog, MONDAY, MONDAY + DAY, MONDAY + 300, MONDAY + 4 * 3600 + 600) == Fraction(10 * DAY * 1200, 900)


def test_a_full_record_is_merged_upward_never_down():
    """Past MAX_TRAINS bolus trains or MAX_STEPS rate steps in 24 h the record is merged so that
    no window holds less than it did: the guard stays on the safe side."""
    now = MONDAY + DAY
    steps: list[int] = []
    trains: list[int] = []
    t = MONDAY
    for i in range(12):  # 12 periodic programs of 2 h, each with its own flex-like steps
        for k in range(12):
            steps += [t + k * 600, 100 + (i * 7 + k * 13) % 300]
        trains += [t, t + 7200, t, 1800, 600, 5 + i]
        t += 7200
    before = [list(steps), list(trains)]
    past = [now, steps, trains, None]
    schedule._prune(past, now - DAY)
    assert len(past[2]) <= 6 * schedule.MAX_TRAINS and len(past[1]) <= 2 * schedule.MAX_STEPS
    for a in range(MONDAY, now, 1800):
        for b in (a + 3600, a + 6 * 3600, now):
            if b <= now:
                old = schedule.amount([(before[0], now, before[1])], a, b)
                new = schedule.amount([(past[1], now, past[2])], a, b)
                assert Fraction(*new) >= Fraction(*old), (a, b)
