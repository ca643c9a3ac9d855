"""A representative part of the HIL scenario library on the emulated RP2040 (issue 13: the
scenarios run on that back end where it supports their steps): the real rp2 MicroPython and
hal/rp2.py, flashed by `itbpump flash`, with the rig on the emulated pins and the fast-forward
clock. Chosen to cover, in a few minutes of wall time, what only this back end can get wrong:
the STEP edges of an hour of priming, a power cut with the DS3231's clock lost, and a power cut
half-way through a flash write on the real LittleFS (tests/test_rp2040.py has the stall, its
critical tone on the buzzer's PWM, and the watchdog). The whole library on this back end is a
separate run, hours long (docs/rp2040.md section 8): `make hil-rp2040`, that is
`itbpump-hil run hil/scenarios --rig rp2040 --jobs 2 --report hil/reports/rp2040`, or
`pytest tests/test_hil_library.py --rig rp2040`.

Skipped with one line when the MicroPython image and bootrom are absent (ITBPUMP_PICO_DIR)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil import scenario
from hil.pytest_plugin import run_scenario
from hil.rig import Rp2040Rig
from hil.rp2040.board import needs_equipment

pytestmark = needs_equipment()

LIBRARY = Path(__file__).resolve().parents[1] / "hil" / "scenarios"
SUBSET = [
    "clock_loss_restores_the_last_saved_time.toml",          # power cut, the DS3231 loses its battery
    "priming_pushes_catheter_plus_0140_ml_tubing.toml",      # an hour fast-forwarded: STEP edges exactly
    "power_cut_mid_write_loses_no_committed_change.toml",    # LittleFS meets a torn flash write
]


@pytest.mark.parametrize("name", SUBSET, ids=[n.rsplit(".", 1)[0] for n in SUBSET])
def test_scenario_on_the_emulated_rp2040(name: str) -> None:
    sc = scenario.load(LIBRARY / name)
    assert Rp2040Rig.capabilities.lacks(sc["needs"]) == []  # it runs, never skips
    rig = Rp2040Rig()
    try:
        run_scenario(sc, rig)
    finally:
        rig.close()
