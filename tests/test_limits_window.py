"""Issue 16.2: the titration guard bounds what the patient can receive in every rolling 24 h window
a change touches, not only each prescription's calendar day.

The reshape of the issue: 200 mcg/day for a day, then a flex day of 480 mcg/day from 06:00 and
40 from 18:00 (+30 % as a day's total), then 12 h later the same steps swapped: 480 mcg in 24 h
against a 260 mcg allowance. Now the first reshape is refused: the 24 h from 18:00 yesterday
would get 100 mcg of the old dose and 240 mcg of the new one.
"""

from __future__ import annotations

from core import errors
import pytest
from device_harness import ClockHal, Pump

HOUR = 3600
DAY = 24 * HOUR
MONDAY_0600 = 800_006_400 - (800_006_400 % DAY) + 6 * HOUR + 2 * DAY  # any 06:00 UTC will do

pytestmark = pytest.mark.usefixtures("fast_calls")


class ClockPump(Pump):
    hal_type = ClockHal


@pytest.fixture
def pump(flash):
    p = ClockPump(flash)
    good, out = p.send("limits", profile="spinal", titration_pct=30)
    assert good, out
    p.change("refill", removed_nl=0, added_nl=20_000_000, concentration=500)
    p.change("program", mode="continuous", dose_mcg=200)
    return p


def _at_six(pump) -> None:
    now = pump.dev.therapy.now_s()
    pump.advance((6 * HOUR - now % DAY) % DAY or DAY)


def test_the_issue_reshape_is_refused_with_what_is_left_and_when(pump):
    pump.advance(DAY)
    _at_six(pump)
    before = (pump.dev.therapy.mode, list(pump.dev.safety.hist), list(pump.dev.safety.past[1]))
    good, out = pump.send("program", mode="flex", days={"all": [[360, 480], [1080, 40]]})
    assert not good and out["code"] == errors.LIMIT and out["limit"] == "titration_window", out
    assert out["override"] is False
    assert (out["before_mcg_x10"], out["new_mcg_x10"], out["allowance_mcg_x10"], out["left_mcg_x10"]) == (
        1000, 2400, 2600, 1600), out
    assert out["window_end_s"] - out["window_start_s"] == DAY
    assert out["window_start_s"] == pump.dev.therapy.now_s() - 12 * HOUR  # from 18:00 yesterday
    # from 14:00: 4 h at 480 then 40 keeps every window that began since 18:00 yesterday within 260
    assert out["retry_in_s"] == 8 * HOUR
    assert "160.0 mcg are left" in out["text"] and "the change fits in 8 h" in out["text"]
    assert (pump.dev.therapy.mode, pump.dev.safety.hist, pump.dev.safety.past[1]) == before  # nothing changed
    # the programmer says it in mcg and the pump's local time, with no internal names or units
    from test_clinical_words import clean_json, clean_text, rendered

    text, doc = rendered("program", out)
    clean_text(text)
    clean_json(doc)
    assert "160.0 mcg are left" in text and "would fit from" in text and doc["left_mcg"] == 160.0
    # an override does not pass the titration guard
    good, out = pump.send("program", mode="flex", days={"all": [[360, 480], [1080, 40]]}, override="why not")
    assert not good and out["limit"] == "titration_window"


def test_a_reshape_within_every_window_is_accepted_and_the_swap_is_not(pump):
    pump.advance(DAY)
    _at_six(pump)
    pump.change("program", mode="flex", days={"all": [[360, 150], [1080, 350]]})  # 250 mcg/day
    pump.advance(12 * HOUR)  # 18:00: 75 mcg of it so far
    # swapping the steps now would put 350 x 12 h + ... into the windows that began this morning
    good, out = pump.send("program", mode="flex", days={"all": [[360, 350], [1080, 150]]})
    assert good, out  # 18:00-06:00 at 150, then 350: the worst 24 h is 250
    good, out = pump.send("program", mode="flex", days={"all": [[360, 40], [1080, 480]]})
    assert not good and out["limit"] == "titration_window", out  # 480 from now on: over 260 in 24 h


def test_an_increase_to_exactly_the_allowance_is_accepted(pump):
    pump.advance(DAY)
    pump.change("program", mode="continuous", dose_mcg=260)
    assert pump.dev.therapy.daily_x1440 == 260 * 1440


def test_a_decrease_is_never_refused_by_the_window(pump):
    pump.advance(DAY)
    pump.change("program", mode="continuous", dose_mcg=260)
    pump.advance(HOUR)
    good, out = pump.send("program", mode="continuous", dose_mcg=210)  # windows still hold 260 doses
    assert good, out


def test_periodic_boluses_off_the_days_grid_count_at_their_maximum(pump):
    """A bolus every 2 days is one bolus in some 24 h, not half a bolus a day."""
    pump.advance(DAY)
    good, out = pump.send("program", mode="periodic", basal_mcg=200, bolus_mcg=60, every_s=2 * DAY, over_s=3600)
    assert good, out  # 230 mcg/day on average, 260 in a 24 h with a bolus: exactly the allowance
    good, out = pump.send("program", mode="periodic", basal_mcg=200, bolus_mcg=61, every_s=2 * DAY, over_s=3600)
    assert not good and out["limit"] == "titration" and "worst 24 h gives 261.0 mcg" in out["text"], out


def test_a_day_specific_flex_is_judged_by_its_worst_24_h(pump):
    pump.advance(DAY)
    days = {d: [[0, 100], [720, 400]] for d in ("mon", "wed", "fri", "sun")}
    days.update({d: [[0, 400], [720, 100]] for d in ("tue", "thu", "sat")})
    # every day gives 250 mcg, but noon Monday to noon Tuesday gives 400
    good, out = pump.send("program", mode="flex", days=days)
    assert not good and out["limit"] == "titration" and "worst 24 h gives 400.0 mcg" in out["text"], out


def test_vm_window_guard_in_the_budget_heap(tmp_path):
    """The same on the virtual Pico in the budget heap: the window rule's loads (review, limit_rules,
    schedule) fit, and the refusal reaches the programmer with its numbers."""
    from datetime import datetime, timezone

    from hil.vpico.control import SimControl
    from hil.vpico.layout import BUDGET_HEAP
    from host_tools.client import PumpClient
    from host_tools.errors import DeviceRefused
    from host_tools.units import device_seconds

    ctl = SimControl(tmp_path / "small")
    port = ctl.start(clock="manual", fresh=True, heap=BUDGET_HEAP)["port"]
    try:
        with PumpClient(port) as c:
            c.clock(set_s=device_seconds(datetime(2027, 1, 4, 6, 0, tzinfo=timezone.utc)))
            c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
            c.program(mode="continuous", dose_mcg=200)
        ctl.advance(DAY * 1000)
        with PumpClient(port) as c:
            with pytest.raises(DeviceRefused) as e:
                c.program(mode="flex", days={"all": [[360, 480], [1080, 40]]})
            assert e.value.detail.get("limit") == "titration_window", e.value.detail
            assert e.value.detail["left_mcg_x10"] == 1600
            c.program(mode="periodic", basal_mcg=200, bolus_mcg=10, every_s=4 * HOUR, over_s=900)  # 260
            s = c.status()
            assert (s["mode"], s["daily_dose_mcg"]) == ("periodic", 260)
            assert c.diag()["mem_free"] > 2 * 1024
        assert ctl.info()["boots"] == 1
    finally:
        ctl.stop()


def test_the_record_follows_a_clock_change_and_a_power_cut(pump, flash):
    """Setting the clock moves device time, not the last 24 h; a power cut keeps the record."""
    pump.advance(DAY)
    _at_six(pump)
    good, out = pump.send("clock", set_s=pump.dev.therapy.now_s() + 3 * HOUR)  # now 09:00 by the clock
    assert good, out
    good, out = pump.send("program", mode="flex", days={"all": [[540, 480], [1260, 40]]})  # the same, 3 h later
    assert not good and out["limit"] == "titration_window" and out["left_mcg_x10"] == 1600, out
    rec = [list(x) if isinstance(x, list) else x for x in pump.dev.safety.past]
    from device_harness import boot

    dev = boot(flash, rtc=pump.dev.therapy.now_s())
    assert dev.safety.past == rec


def test_a_periodic_bolus_counts_once_after_the_record_is_closed_mid_prescription(pump):
    """Found by test_limits_model (cerebral): a change of patient-bolus settings closes the record of
    the last 24 h while a periodic prescription runs on. Its boluses up to then are the record's;
    the running part, which keeps the grid's first bolus time, counted them again, so a window
    held 2 x 40 mcg more than was given and a small, allowed PTM change was refused."""
    pump.advance(DAY)
    pump.change("program", mode="periodic", basal_mcg=120, bolus_mcg=40, every_s=12 * HOUR, over_s=HOUR)
    pump.advance(23 * HOUR)
    pump.change("ptm", enable=True, dose_mcg=1, over_s=600, max_per_day=2, lockout_s=HOUR)  # closes the record
    pump.advance(1)
    # about 203 mcg given in the last 24 h, 210 mcg/day from now: within the 260 mcg allowance
    good, out = pump.send("ptm", enable=True, dose_mcg=1, over_s=600, max_per_day=10, lockout_s=HOUR)
    assert good, out


def test_a_periodic_bolus_counts_once_after_the_record_is_closed_twice_mid_prescription(pump):
    """Found by test_limits_model (cerebral): two closes of the record while one periodic
    prescription runs on (a patient-bolus change, then another, or a stop). The record's second
    piece kept the grid's first bolus time as its train's start, so the boluses up to the first
    close counted again (2 x 40 mcg here) and an allowed change was refused over 24 h."""
    pump.advance(DAY)
    pump.change("program", mode="periodic", basal_mcg=120, bolus_mcg=40, every_s=12 * HOUR, over_s=HOUR)
    pump.advance(22 * HOUR)
    pump.change("ptm", enable=True, dose_mcg=1, over_s=600, max_per_day=2, lockout_s=HOUR)  # closes the record
    pump.advance(HOUR)
    pump.change("ptm", enable=True, dose_mcg=1, over_s=600, max_per_day=3, lockout_s=HOUR)  # and again
    pump.advance(1)
    # about 197 mcg given in the last 24 h, 210 mcg/day from now: within the 260 mcg allowance
    good, out = pump.send("ptm", enable=True, dose_mcg=1, over_s=600, max_per_day=10, lockout_s=HOUR)
    assert good, out
