"""Issue 11 item 4: the alarm and refill dates follow the real schedule (flex steps, periodic
boluses), not the day's average: the date predicted at programming time (the review's new side
and status) is when `low_reservoir` and `empty_reservoir` fire, to within one stroke interval.

Under CPython (device_harness, its RTC moving with its ticks) and on the virtual Pico (MicroPython
VM, lockstep clock; alarms observed through status as in test_alarms_vm.py).
"""

from __future__ import annotations

import pytest
from device_harness import ClockHal, Pump

from host_tools.client import PumpClient
from host_tools.pump_facts import stroke_nl

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
STROKE_NL = stroke_nl()  # the firmware's (dose.py), read as data
# the flex: 06:00 200 mcg/day, 22:00 600 mcg/day at 500 mcg/mL (0.4 and 1.2 mL/day)
FLEX = {"mode": "flex", "days": {"all": [[360, 200], [1320, 600]]}}
# periodic boluses whose interval does not divide the day: basal 100 + 50 mcg every 7 h over 1 h
PERIODIC = {"mode": "periodic", "basal_mcg": 100, "bolus_mcg": 50, "every_s": 25_200, "over_s": 3600}


def stroke_s(nl_per_day: int) -> float:
    """One stroke interval at this volume rate, seconds."""
    return STROKE_NL * 86_400 / nl_per_day


# slowest rate each prescription runs at (its longest stroke interval): 200 mcg/day, 100 mcg/day
TOLERANCE = {"flex": stroke_s(200 * 2000), "periodic": stroke_s(100 * 2000)}


class ClockPump(Pump):
    hal_type = ClockHal


@pytest.mark.usefixtures("fast_calls")
@pytest.mark.parametrize("prog, fill", [(FLEX, 20_000_000), (FLEX, 7_345_000), (PERIODIC, 9_345_000)],
                         ids=["flex-20mL", "flex", "periodic"])
def test_predicted_dates_are_when_the_alarms_fire(flash, prog, fill):
    pump = ClockPump(flash)
    pump.advance(5000)  # not at a whole day: the walk starts mid-schedule
    pump.change("refill", removed_nl=0, added_nl=fill, concentration=500)
    rv = pump.change("program", override="first program", **prog)["review"]["new"]
    good, st = pump.send("status")
    assert good, st
    assert (rv["alarm_date"], rv["refill_date"]) == (st["alarm_date"], st["refill_date"])
    average = st["clock"] + (fill - 2_000_000) * 86_400 // rv["rate_nl_per_day"]  # what the day's average says
    fired: dict[str, int] = {}
    while "empty_reservoir" not in pump.dev.alarms.active:
        pump.advance(3600)
        for code, (since, _) in pump.dev.alarms.active.items():
            fired.setdefault(code, since)
    tol = TOLERANCE[prog["mode"]]
    assert abs(fired["low_reservoir"] - st["alarm_date"]) <= tol
    assert abs(fired["empty_reservoir"] - st["refill_date"]) <= tol
    assert abs(fired["low_reservoir"] - st["alarm_date"]) <= 1  # in fact to the second
    assert abs(fired["empty_reservoir"] - st["refill_date"]) <= 1
    if fill % 1_000_000:  # (a whole number of days' volume left, the average is right by chance)
        assert abs(fired["low_reservoir"] - average) > 10 * tol


@pytest.mark.usefixtures("fast_calls")
def test_a_bolus_on_top_moves_the_dates_by_its_volume(flash):
    pump = ClockPump(flash)
    pump.change("refill", removed_nl=0, added_nl=6_000_000, concentration=500)
    pump.change("program", override="first program", **FLEX)
    good, before = pump.send("status")
    rv = pump.change("bolus", dose_mcg=40, over_s=3000)["review"]
    assert rv["current"]["alarm_date"] == before["alarm_date"]
    assert rv["new"]["alarm_date"] < before["alarm_date"]  # 0.08 mL sooner
    good, st = pump.send("status")
    assert (st["alarm_date"], st["refill_date"]) == (rv["new"]["alarm_date"], rv["new"]["refill_date"])
    while "empty_reservoir" not in pump.dev.alarms.active:
        pump.advance(3600)
    active = pump.dev.alarms.active
    assert abs(active["low_reservoir"][0] - st["alarm_date"]) <= 1
    assert abs(active["empty_reservoir"][0] - st["refill_date"]) <= 1


@pytest.mark.usefixtures("fast_calls")
def test_minimum_rate_then_refill_predicts_from_the_schedule_again(flash):
    pump = ClockPump(flash)
    pump.change("refill", removed_nl=0, added_nl=2_600_000, concentration=500)
    pump.change("program", override="first program", **FLEX)
    while "empty_reservoir" not in pump.dev.alarms.active:
        pump.advance(3600)
    assert pump.dev.therapy.minimum
    good, rv = pump.send("refill", removed_nl=pump.dev.therapy.reservoir_nl, added_nl=3_000_000, concentration=500)
    assert good, rv
    # the refill clears the empty reservoir: the new side's dates are the flex schedule's, not 0.048 mL/day's
    now = pump.dev.therapy.now_s()
    assert rv["current"]["refill_date"] <= now  # there already
    assert now + 3 * 86_400 < rv["new"]["refill_date"] < now + 4 * 86_400  # 2.5 mL at about 0.67 mL/day


@pytest.mark.parametrize("prog, fill", [(FLEX, 4_345_000), (PERIODIC, 4_345_000)], ids=["flex", "periodic"])
def test_vm_predicted_dates_are_when_the_alarms_fire(vpico, vpico_port, prog, fill):
    with PumpClient(vpico_port) as c:
        c.refill(removed_nl=0, added_nl=fill, concentration=500)
        rv = c.program(override="new pump: first program", **prog)["review"]["new"]
        st = c.status()
    assert (rv["alarm_date"], rv["refill_date"]) == (st["alarm_date"], st["refill_date"])
    seen: dict[str, int] = {}
    while len(seen) < 2:
        vpico.advance(HOUR_MS)
        with PumpClient(vpico_port) as c:
            for a in c.status()["alarms"]:
                seen.setdefault(a["code"], a["since"])
    tol = TOLERANCE[prog["mode"]]
    assert abs(seen["low_reservoir"] - st["alarm_date"]) <= tol
    assert abs(seen["empty_reservoir"] - st["refill_date"]) <= tol
