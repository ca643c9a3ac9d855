"""The therapy engine under CPython against exact references: delivery is exact to the stroke.

The references integrate the prescription with exact rational arithmetic,
independently of the engine's accumulator; the engine must never run ahead of
the programmed volume, and never fall a whole stroke behind it.
"""

from __future__ import annotations

from fractions import Fraction

from therapy import units as dose
from requests import program as program_cmd
import pytest
from engine_harness import run_for
from hypothesis import given, settings
from hypothesis import strategies as st
from therapy.engine import EV_BOLUS_DONE, EV_BRIDGE_DONE, EV_PRIMED, Therapy

DAY_DS = 864_000
MONDAY_0000 = 9 * 86400 + 2 * 86400  # 2000-01-10 00:00 UTC was a Monday (2000-01-01 a Saturday)
concs = st.sampled_from(dose.LIBRARY)


def new_pump(conc: int, start_s: int = MONDAY_0000, reservoir_nl: int = 40_000_000) -> Therapy:
    th = Therapy(start_s)
    th.refill(reservoir_nl, conc)
    return th


def rate(mcg_per_day: int, conc: int) -> int:
    return mcg_per_day * 1_000_000 // conc  # nL/day, exact for the library


def dose_in_range(conc: int):
    lo = -(-dose.MIN_RATE_NL * conc // 1_000_000)
    hi = dose.MAX_RATE_NL * conc // 1_000_000
    return st.integers(min_value=max(1, lo), max_value=min(hi, 2000))


def assert_tracks(strokes: int, programmed_nl: Fraction) -> None:
    """Never ahead of the programmed volume, never a whole stroke behind it."""
    assert 0 <= programmed_nl - strokes * 250 < 250, (strokes, float(programmed_nl))


@settings(deadline=None)
@given(concs, st.data(), st.lists(st.integers(min_value=1, max_value=3 * DAY_DS), min_size=1, max_size=12))
def test_continuous_any_time_split(conc, data, chunks):
    mcg = data.draw(dose_in_range(conc))
    th = new_pump(conc)
    th.program_continuous(mcg)
    elapsed = 0
    for ds in chunks:
        run_for(th, ds)
        elapsed += ds
        assert_tracks(th.d.strokes, Fraction(rate(mcg, conc) * elapsed, DAY_DS))


@settings(max_examples=60, deadline=None)
@given(concs, st.data(), st.lists(st.tuples(st.integers(min_value=1, max_value=DAY_DS), st.integers(0, 10**6)),
                                  min_size=1, max_size=10))
def test_rate_changes_carry_the_remainder_exactly(conc, data, segments):
    th = new_pump(conc)
    programmed = Fraction(0)
    for ds, pick in segments:
        mcg = data.draw(dose_in_range(conc))
        th.program_continuous(mcg)
        run_for(th, ds)
        programmed += Fraction(rate(mcg, conc) * ds, DAY_DS)
        assert_tracks(th.d.strokes, programmed)


def test_no_drift_over_six_months():
    th = new_pump(500)
    th.program_continuous(123)  # 0.246 mL/day: a remainder every stroke
    for day in range(1, 181):
        run_for(th, DAY_DS)
        assert_tracks(th.d.strokes, Fraction(rate(123, 500) * day))


# -- flex ------------------------------------------------------------------------------
def flex_reference_nl(days, conc, offset_min, start_s, ds_total):
    """Integrate a flex schedule minute by minute of local time (exact: steps start on minutes)."""
    total = Fraction(0)
    t_ds = 0
    while t_ds < ds_total:
        local = start_s + t_ds // 10 + offset_min * 60
        day = (local // 86400 + 5) % 7
        minute = (local % 86400) // 60
        mcg = days[(day + 6) % 7][-1][1]
        for start, d in days[day]:
            if start <= minute:
                mcg = d
        to_next_minute_ds = (60 - local % 60) * 10 - t_ds % 10
        ds = min(to_next_minute_ds, ds_total - t_ds)
        total += Fraction(rate(mcg, conc) * ds, DAY_DS)
        t_ds += ds
    return total


def flex_days(draw_steps):
    return st.lists(
        st.tuples(st.integers(0, 1439), st.integers(50, 900)), min_size=1, max_size=dose.MAX_FLEX_STEPS,
        unique_by=lambda s: s[0]).map(lambda steps: tuple(sorted(steps)))


@settings(max_examples=25, deadline=None)
@given(st.data(), st.booleans(), st.integers(-720, 840), st.integers(0, 86399),
       st.lists(st.integers(1, DAY_DS), min_size=1, max_size=4))
def test_flex_follows_local_time_exactly(data, per_day, offset_min, start_offset_s, chunks):
    if per_day:
        days = tuple(data.draw(flex_days(None)) for _ in range(7))
    else:
        days = (data.draw(flex_days(None)),) * 7
    th = new_pump(500, MONDAY_0000 + start_offset_s)
    th.set_offset(offset_min)
    th.program_flex(days)
    elapsed = 0
    for ds in chunks:
        run_for(th, ds)
        elapsed += ds
        ref = flex_reference_nl(days, 500, offset_min, MONDAY_0000 + start_offset_s, elapsed)
        assert_tracks(th.d.strokes, ref)


def test_flex_day_night_across_midnight_hand_computed():
    # 300 mcg/day 07:00-22:00, 600 mcg/day 22:00-07:00 at 500 mcg/mL: 0.6 / 1.2 mL/day
    days = ((420, 300), (1320, 600))
    th = new_pump(500, MONDAY_0000 + 20 * 3600)  # Monday 20:00 local (UTC+0)
    th.program_flex((days,) * 7)
    assert th.flex_now()[0] == 300
    run_for(th, 2 * 36000)  # to 22:00
    assert th.d.strokes == 2 * 3600 * 600_000 // 86400 // 250  # 2 h at 0.6 mL/day = 50000 nL = 200 strokes
    assert th.flex_now()[0] == 600
    run_for(th, 9 * 36000)  # across midnight to Tuesday 07:00
    # 9 h at 1.2 mL/day = 450000 nL = 1800 strokes
    assert th.d.strokes == 200 + 1800
    assert th.flex_now()[0] == 300
    assert program_cmd.flex_daily_x1440(th.flex) == 300 * 900 + 600 * 540  # 412.5 mcg/day


def test_daylight_saving_offset_change_moves_the_steps():
    days = ((420, 300), (1320, 600))
    th = new_pump(500, MONDAY_0000 + 5 * 3600 + 30 * 60)  # 05:30 UTC, local UTC+1 = 06:30
    th.set_offset(60)
    th.program_flex((days,) * 7)
    assert th.flex_now() == (600, 30 * 600)  # 30 min to the 07:00 step
    th.set_offset(120)  # spring forward: local is now 07:30
    assert th.flex_now()[0] == 300
    th.set_offset(60)  # back: 06:30 local again, the night step resumes
    assert th.flex_now() == (600, 30 * 600)


# -- boluses -----------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(concs, st.data(), st.integers(1, 100), st.integers(60, 86_400), st.integers(0, DAY_DS))
def test_clinician_bolus_volume_is_exact_and_therapy_goes_on(conc, data, bolus_mcg, over_s, before_ds):
    mcg = data.draw(dose_in_range(conc))
    basal = rate(mcg, conc)
    if basal + bolus_mcg * 1_000_000 // conc * 86_400 // over_s > dose.MAX_RATE_NL:
        return  # the device refuses that bolus (too fast)
    th = new_pump(conc)
    th.program_continuous(mcg)
    run_for(th, before_ds)
    th.start_bolus(bolus_mcg, over_s * 10)
    assert th.d.rate > basal
    run_for(th, over_s * 10)
    assert th.events & EV_BOLUS_DONE and th.d.rate == basal
    volume = bolus_mcg * 1_000_000 // conc
    programmed = Fraction(basal * (before_ds + over_s * 10), DAY_DS) + volume
    assert_tracks(th.d.strokes, programmed)


def test_single_bolus_resumes_flex():
    days = ((420, 300), (1320, 600))
    th = new_pump(500, MONDAY_0000 + 21 * 3600)  # 21:00
    th.program_flex((days,) * 7)
    th.start_bolus(50, 2 * 36000)  # 50 mcg over 2 h, across the 22:00 step
    run_for(th, 18000)  # 21:30
    assert th.d.rate == 600_000 + 100_000 * 12  # 0.6 mL/day + 0.1 mL over 2 h (1.2 mL/day)
    run_for(th, 36000)  # 22:30: the night step under the bolus
    assert th.d.rate == 1_200_000 + 1_200_000
    run_for(th, 18000)  # 23:00: bolus over, the night step goes on
    assert th.d.rate == 1_200_000 and th.mode == "flex"
    # 1 h at 0.6 + 1 h at 1.2 mL/day + 0.1 mL bolus = 25000 + 50000 + 100000 nL
    assert th.d.strokes == (25_000 + 50_000 + 100_000) // 250


def test_periodic_bolus_timing():
    # background 200 mcg/day, 50 mcg every 6 h over 30 min, first at 08:00 local; 500 mcg/mL
    th = new_pump(500, MONDAY_0000 + 7 * 3600)
    th.program_periodic(200, 50, 6 * 36000, 30 * 600, 36000)
    starts = []
    for minute in range(24 * 60):
        before = th.d.rate
        run_for(th, 600)
        if th.d.rate > before:
            starts.append(minute + 1)
    assert starts == [60, 60 + 360, 60 + 720, 60 + 1080]  # 08:00, 14:00, 20:00, 02:00
    # a day: 0.4 mL background + 4 x 0.1 mL = 0.8 mL = 3200 strokes
    assert th.d.strokes == 3200


# -- priming and bridge -------------------------------------------------------------------
def test_priming_fills_catheter_plus_0_140_ml_tubing_at_max_rate():
    th = new_pump(500)
    th.program_continuous(500)
    run_for(th, 12_345)
    before, acc = th.d.strokes, th.d.acc
    th.prime(250_000)  # 0.25 mL catheter
    assert th.d.rate == dose.MAX_RATE_NL
    # (0.25 + 0.140) mL = 390000 nL = 1560 strokes, 9 ds each at 24 mL/day
    run_for(th, 1560 * 9 - 1)
    assert not th.events & EV_PRIMED
    run_for(th, 1)
    assert th.events & EV_PRIMED and th.prime_strokes == 1560
    assert th.d.strokes - before == 1560 and th.d.acc == acc  # therapy resumes where it paused
    assert th.d.rate == 1_000_000


def test_bridge_keeps_old_volume_rate_through_the_dead_volume():
    th = new_pump(500)
    th.prime(200_000)
    run_for(th, DAY_DS)
    th.program_continuous(500)  # 1 mL/day at 500 mcg/mL
    run_for(th, DAY_DS)
    th.refill(20_000_000, 2000)  # new drug 4x stronger
    # dead volume 0.140 + 0.200 mL = 340000 nL of old drug: 1 mL/day still, 1360 strokes
    assert th.bridge_left == 340_000 and th.d.rate == 1_000_000
    s0 = th.d.strokes
    run_for(th, 1)
    while not th.events & EV_BRIDGE_DONE:
        run_for(th, 1)
    assert th.d.strokes - s0 == 1360
    assert th.d.rate == 250_000  # 500 mcg/day at 2000 mcg/mL = 0.25 mL/day


def test_first_fill_starts_no_bridge():
    th = Therapy(MONDAY_0000)
    th.refill(20_000_000, 500)
    assert th.bridge_left == 0


def test_minimum_rate_and_halt():
    th = new_pump(500)
    th.program_continuous(500)
    th.set_minimum(True)
    assert th.d.rate == dose.MIN_RATE_NL
    run_for(th, DAY_DS)
    assert th.d.strokes == 48_000 // 250
    th.set_minimum(False)
    assert th.d.rate == 1_000_000
    th.set_halted(True)
    assert th.d.rate == 0 and th.next_event() == DAY_DS - th.t  # only the daily re-base remains
    s = th.d.strokes
    run_for(th, DAY_DS)
    assert th.d.strokes == s


@pytest.mark.parametrize("days", [1, 30, 200])
def test_engine_time_stays_small(days):
    th = new_pump(500)
    th.program_continuous(100)
    run_for(th, days * DAY_DS + 7)
    assert 0 <= th.t < DAY_DS and th.now_s() == MONDAY_0000 + days * 86400
    assert th.d.acc < dose.K_STROKE + dose.MAX_RATE_NL < 2**30


def test_priming_during_a_bridge_leaves_at_most_the_tubing_of_old_drug():
    th = new_pump(500)
    th.prime(300_000)
    run_for(th, DAY_DS)
    th.program_continuous(500)
    th.refill(20_000_000, 2000)
    assert th.bridge_left == 440_000
    th.prime(250_000)  # a new catheter before the bridge ran through
    assert th.bridge_left == 140_000
    run_for(th, 1560 * 9)  # priming strokes do not count toward the bridge
    assert th.events & EV_PRIMED and th.bridge_left == 140_000 and th.d.rate == 1_000_000
