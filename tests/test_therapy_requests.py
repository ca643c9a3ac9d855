"""Therapy requests through the device core under CPython: refusals name the limit and change nothing."""

from __future__ import annotations

import os

from core import errors
import pytest
from core.device import Device
from memhal import MemHal
from device_session import session


TUBING = 140_000


@pytest.fixture
def dev(tmp_path):
    cwd = os.getcwd()
    d = Device(MemHal(str(tmp_path / "flash")))
    d.boot()
    yield d
    os.chdir(cwd)


def ask(dev: Device, cmd: str, **args):
    """A clinician's request: authenticated, and two-phase requests prepared then committed."""
    return session(dev).ask(cmd, **args)


def ok(dev, cmd, **args):
    good, body = ask(dev, cmd, **args)
    assert good, body
    return body


def refused(dev, cmd, words, **args):
    before = (dev.fsm.state, dev.therapy.mode, dev.therapy.d.rate, dev.therapy.conc, dev.therapy.offset_min,
              dev.therapy.now_s(), dev.therapy.b_end)
    good, body = ask(dev, cmd, **args)
    assert not good and words in body["text"], body
    after = (dev.fsm.state, dev.therapy.mode, dev.therapy.d.rate, dev.therapy.conc, dev.therapy.offset_min,
             dev.therapy.now_s(), dev.therapy.b_end)
    assert before == after, "a refused request changed the pump"
    return body


def test_stop_is_allowed_while_priming(dev):
    ok(dev, "refill", removed_nl=0, added_nl=20_000_000, concentration=500)
    ok(dev, "prime", catheter_nl=200_000)
    refused(dev, "program", "priming is in progress", mode="continuous", dose_mcg=500)
    assert ok(dev, "program", mode="stop", reason="catheter leak found")["state"] == "stopped"
    assert dev.therapy.priming == 0 and dev.therapy.d.rate == 0


def test_float_concentration_is_not_in_the_library(dev):
    body = refused(dev, "refill", "not in the drug library", removed_nl=0, added_nl=1_000_000, concentration=500.0)
    assert body["code"] == errors.BAD_ARGUMENT


def test_refill_to_a_concentration_that_breaks_the_prescription_is_refused(dev):
    ok(dev, "refill", removed_nl=0, added_nl=20_000_000, concentration=50)
    ok(dev, "program", mode="continuous", dose_mcg=30)  # 0.6 mL/day at 50 mcg/mL
    # at 2000 mcg/mL 30 mcg/day would be 0.015 mL/day: below the minimum rate
    refused(dev, "refill", "outside the pump's rate range", removed_nl=0, added_nl=20_000_000, concentration=2000)


def test_programming_during_a_bridge_fits_both_drugs(dev):
    ok(dev, "refill", removed_nl=0, added_nl=20_000_000, concentration=500)
    ok(dev, "program", mode="continuous", dose_mcg=100)
    ok(dev, "refill", removed_nl=0, added_nl=20_000_000, concentration=2000)
    assert dev.therapy.bridge_left == TUBING
    # 20 mcg/day: 0.04 mL/day of the old drug, 0.01 mL/day of the new: both below 0.048
    refused(dev, "program", "at 500 mcg/mL", mode="continuous", dose_mcg=20)
    refused(dev, "program", "at 2000 mcg/mL", mode="continuous", dose_mcg=50)  # 0.1 then 0.025 mL/day


def test_overlapping_boluses_cannot_exceed_the_maximum_rate(dev):
    ok(dev, "refill", removed_nl=0, added_nl=20_000_000, concentration=50)
    # periodic: 50 mcg over 5 min at 50 mcg/mL = 1 mL in 5 min = 288 mL/day? too fast: refused outright
    refused(dev, "program", "above its maximum 24 mL/day", mode="periodic", basal_mcg=100, bolus_mcg=50,
            every_s=3600, over_s=300)
    # 10 mcg over 1 h (4.8 mL/day) with 100 mcg/day basal (2 mL/day): fine alone
    ok(dev, "program", mode="periodic", basal_mcg=100, bolus_mcg=10, every_s=3600, over_s=3600 - 60,
       start_min=(dev.therapy.now_s() // 60 + 30) % 1440)
    # a clinician bolus of 40 mcg over 1 h (19.2 mL/day) would overlap the periodic one: 26 mL/day
    refused(dev, "bolus", "above its maximum 24 mL/day", dose_mcg=40, over_s=3600)
    ok(dev, "bolus", dose_mcg=30, over_s=3600)  # 14.4 + 4.9 + 2 = 21.3 mL/day
    # and a new program must leave room for the running bolus
    refused(dev, "program", "with the running bolus", mode="continuous", dose_mcg=500)  # 10 + 14.4


def test_clock_refusal_changes_nothing(dev):
    refused(dev, "clock", "utc_offset_min 900 is outside -720..840", set_s=700_000_000, utc_offset_min=900)


def test_no_programming_in_fallback_states_but_stop_is_allowed(dev):
    ok(dev, "refill", removed_nl=0, added_nl=20_000_000, concentration=500)
    ok(dev, "program", mode="continuous", dose_mcg=500)
    dev.therapy.set_minimum(True)
    dev.fsm.fire("fallback")
    refused(dev, "program", "the pump is at the minimum rate", mode="continuous", dose_mcg=400)
    assert ok(dev, "program", mode="stop", reason="reservoir empty, refill tomorrow")["state"] == "stopped"


def test_motor_driver_is_enabled_to_deliver_and_disabled_when_idle(dev):
    seen = []
    dev.hal.motor_enable = seen.append
    ok(dev, "refill", removed_nl=0, added_nl=20_000_000, concentration=500)
    ok(dev, "program", mode="continuous", dose_mcg=500)
    dev.hal.ms += 21_600 * 3
    dev.service()
    assert dev.hal.strokes == 3 and seen == [True]
    ok(dev, "program", mode="stop", reason="end of trial")
    assert seen == [True, False]
