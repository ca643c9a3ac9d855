"""Issue 16.1 and 16.3: periodic boluses keep their schedule across every hold, and a stalled
stroke is not delivered.

A hold (minimum rate, a halt for a stall, priming, a power cut) skips the boluses that fall
inside it; once delivery runs again, every bolus comes on its grid (first + k x every). The
engine keeps its "next event" times in engine time, which is re-based every day: a time left
behind t turned negative at the re-base and read as "none", so the boluses stopped for good.
"""

from __future__ import annotations

from datetime import datetime, timezone

from engine_harness import run_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from therapy.engine import Therapy
from therapy.units import STROKE_NL  # the firmware's stroke volume

from host_tools.client import PumpClient
from host_tools.units import device_seconds

DAY_DS = 864_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MONDAY = 9 * 86400 + 2 * 86400


# -- the engine under CPython: any sequence of holds and advances ----------------------------------
HOLDS = ("halt", "minimum", "prime")
ops = st.lists(st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 2 * DAY_DS)),
    st.tuples(st.sampled_from(HOLDS), st.booleans()),
), min_size=1, max_size=14)


def _set_hold(th: Therapy, kind: str, on: bool) -> None:
    if kind == "halt":
        th.set_halted(on)
    elif kind == "minimum":
        th.set_minimum(on)
    elif on and not th.priming:
        th.prime(0)  # the pump tubing only: 560 strokes at the maximum rate


def _bolus_times(th: Therapy, ds: int, seen: list[int]) -> list[int]:
    """Run ds; the device times (ds) at which a periodic bolus started (seen: all so far)."""
    starts: list[int] = []
    end = th.now_s() * 10 + th.t % 10 + ds
    while True:
        dt = th.next_event()
        now = th.now_s() * 10 + th.t % 10
        if dt < 0 or now + dt > end:
            break
        was = th.p_end
        if th.step():
            th.stroked()
        if th.p_end >= 0 and th.p_end != was:  # (the daily re-base moves p_end too: same start)
            start = th.base_s * 10 + th.p_end - th.p_over
            if not seen or seen[-1] != start:
                seen.append(start)
                starts.append(start)
    th.idle(end - (th.now_s() * 10 + th.t % 10))
    return starts


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.integers(600, 12 * 3600), st.integers(0, DAY_DS - 1))
def test_periodic_boluses_come_on_schedule_whenever_delivery_is_not_held(seq, every_s, first_ds):
    th = Therapy(MONDAY)
    th.refill(40_000_000, 500)
    every = every_s * 10
    over = min(every - 10, 9000)
    th.program_periodic(100, 10, every, over, first_ds)
    grid0 = MONDAY * 10 + first_ds
    seen: list[int] = []
    for op, arg in seq:
        if op == "advance":
            held = th.halted or th.minimum or th.priming  # (priming can only end by itself)
            starts = _bolus_times(th, arg, seen)
            assert all((s - grid0) % every == 0 for s in starts), "a bolus off its grid"
            if not held:
                # nothing held for this whole stretch: every grid point inside it started a bolus
                now = th.now_s() * 10 + th.t % 10
                lo = now - arg
                k = max(0, (lo - grid0) // every + 1)  # the first grid point after lo
                assert starts == list(range(grid0 + k * every, now + 1, every)), (starts, lo, now)
        else:
            _set_hold(th, op, arg)
        # the next bolus time is never left behind engine time, whatever happened
        nxt = th.base_s * 10 + th.p_next
        now = th.now_s() * 10 + th.t % 10
        assert now < nxt <= max(now + every, grid0) and (nxt - grid0) % every == 0, (now, nxt, grid0)


def test_engine_regression_minimum_rate_across_the_rebase():
    """The issue's shape in the engine: minimum rate held across midnight, then released."""
    th = Therapy(MONDAY + 6 * 3600)
    th.refill(20_000_000, 500)
    th.program_periodic(100, 10, 4 * 36000, 9000, 0)
    run_for(th, 36000)
    th.set_minimum(True)
    run_for(th, 2 * DAY_DS)  # two re-bases while held
    th.set_minimum(False)
    s0 = th.strokes
    run_for(th, DAY_DS)
    # 100 mcg/day basal + 6 x 10 mcg = 160 mcg = 0.32 mL = 1280 strokes (the Bresenham carry: +-1)
    assert abs(th.strokes - s0 - 1280) <= 1


# -- on the virtual Pico: the reproduction, and a stall ----------------------------------------
def test_vm_periodic_boluses_resume_after_a_minimum_rate_day(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        c.clock(set_s=device_seconds(datetime(2027, 1, 4, 6, 0, tzinfo=timezone.utc)))
        c.refill(removed_nl=0, added_nl=700_000, concentration=500)
        c.program(mode="periodic", basal_mcg=100, bolus_mcg=10, every_s=4 * 3600, over_s=15 * 60)
    vpico.advance(DAY_MS)
    with PumpClient(vpico_port) as c:
        s = c.status()
        assert s["state"] == "minimum_rate" and "empty_reservoir" in {a["code"] for a in s["alarms"]}
    vpico.advance(DAY_MS - HOUR_MS)  # refilled at 05:00: the next day holds six boluses (06:00 ... 02:00)
    with PumpClient(vpico_port) as c:
        c.refill(removed_nl=450_000, added_nl=20_000_000, concentration=500)
        s = c.status()
        assert (s["state"], s["mode"], s["daily_dose_mcg"]) == ("running", "periodic", 160)
        nxt = s["therapy"]["next_bolus_s"]
        assert s["clock"] < nxt <= s["clock"] + 4 * 3600
        assert (nxt - device_seconds(datetime(2027, 1, 4, 6, 0, tzinfo=timezone.utc))) % (4 * 3600) == 0
        s0 = s["therapy"]["strokes"]
    vpico.advance(DAY_MS)
    with PumpClient(vpico_port) as c:
        delivered = c.status()["therapy"]["strokes"] - s0
    assert abs(delivered - 1280) <= 1, delivered  # 160 mcg/day, not the 800 strokes of the basal alone


def test_vm_stalled_strokes_are_not_delivered(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
        c.program(mode="continuous", dose_mcg=500, override="new pump: first program")
    vpico.advance(HOUR_MS)
    assert vpico.rig("stall 1") == "ok"
    vpico.advance(3 * HOUR_MS)  # the stall, then a restart attempt at every tick: all without drug
    hw = vpico.hardware()
    assert hw["strokes"] > hw["rotor"]
    with PumpClient(vpico_port) as c:
        t = c.status()["therapy"]
        assert t["strokes"] == hw["rotor"]  # only what the rotor confirmed
        assert t["delivered_nl"] == STROKE_NL * hw["rotor"]
        assert t["since_refill_nl"] + c.status()["reservoir_nl"] == t["filled_nl"] == 20_000_000
