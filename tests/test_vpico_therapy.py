"""Therapy on the real MicroPython VM: the same stroke counts as the engine under CPython.

Each scenario is played twice: through the virtual Pico (client over the pty,
rig advancing the lockstep clock, strokes counted by the fixture side), and
by the engine under CPython with the same operations at the same instants.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine_harness import run_for
from therapy.engine import Therapy

from host_tools.client import PumpClient

ROOT = Path(__file__).resolve().parents[1]
HOUR_MS = 3_600_000


class Twin:
    """Apply each step to the virtual Pico and to a CPython engine; compare strokes as we go."""

    def __init__(self, vpico, port: str):
        self.vpico = vpico
        self.client = PumpClient(port)
        self.th = Therapy(self.client.status()["clock"])  # engine time 0 = the device's boot

    def ask(self, cmd: str, **args) -> dict:
        return self.client.run(cmd, **args)

    def advance(self, ms: int) -> None:
        assert ms % 100 == 0
        self.vpico.advance(ms)
        run_for(self.th, ms // 100)
        self.check()

    def check(self) -> None:
        hw = self.vpico.hardware()["strokes"]
        dev = self.client.status()["therapy"]["strokes"]
        assert hw == dev == self.th.d.strokes, (hw, dev, self.th.d.strokes)


def test_continuous_matches_cpython(vpico, vpico_port):
    tw = Twin(vpico, vpico_port)
    tw.ask("refill", removed_nl=0, added_nl=20_000_000, concentration=500)
    tw.th.refill(20_000_000, 500)
    tw.ask("program", mode="continuous", dose_mcg=123, override="new pump: first program")
    tw.th.program_continuous(123)
    tw.advance(3 * 24 * HOUR_MS + 1_234_500)
    tw.advance(17 * 24 * HOUR_MS)  # past the 2**30 ms tick wrap, twice
    elapsed_ds = 20 * 864_000 + 12_345
    assert tw.th.d.strokes == elapsed_ds * 246_000 // 864_000 // 250 == 19_694


def test_flex_with_daylight_saving_change_matches_cpython(vpico, vpico_port):
    tw = Twin(vpico, vpico_port)
    tw.ask("refill", removed_nl=0, added_nl=20_000_000, concentration=500)
    tw.th.refill(20_000_000, 500)
    tw.ask("clock", utc_offset_min=60)
    tw.th.set_offset(60)
    tw.ask("program", mode="flex", days={"all": [[420, 300], [1320, 600]]}, override="new pump: first program")
    tw.th.program_flex((((420, 300), (1320, 600)),) * 7)
    tw.advance(30 * HOUR_MS)
    shift = tw.ask("clock", utc_offset_min=120)["schedule_shift"]
    tw.th.set_offset(120)
    assert "earlier" in shift[0] and any("07:00 local" in line for line in shift)
    tw.advance(41 * HOUR_MS + 600_000)


def test_periodic_bolus_and_clinician_bolus_match_cpython(vpico, vpico_port):
    tw = Twin(vpico, vpico_port)
    tw.ask("refill", removed_nl=0, added_nl=40_000_000 // 2, concentration=1000)
    tw.th.refill(20_000_000, 1000)
    now = tw.th.now_s() + tw.th.offset_min * 60
    start_min = ((now % 86400) // 60 + 90) % 1440  # first bolus 90-odd minutes from now
    answer = tw.ask("program", mode="periodic", basal_mcg=200, bolus_mcg=50, every_s=6 * 3600, over_s=1800,
                    start_min=start_min, override="new pump: first program")
    assert answer["daily_dose_mcg"] == 200 + 4 * 50
    first = ((start_min * 60 - now % 86400) % 86400) * 10 - tw.th.t % 10
    tw.th.program_periodic(200, 50, 6 * 36000, 18000, first)
    tw.advance(10 * HOUR_MS)
    tw.ask("bolus", dose_mcg=25, over_s=3600)
    tw.th.start_bolus(25, 36000)
    tw.advance(40 * HOUR_MS)


def test_priming_and_bridge_match_cpython_and_hand_computed(vpico, vpico_port):
    tw = Twin(vpico, vpico_port)
    tw.ask("refill", removed_nl=0, added_nl=20_000_000, concentration=500)
    tw.th.refill(20_000_000, 500)
    tw.ask("program", mode="continuous", dose_mcg=500, override="new pump: first program")
    tw.th.program_continuous(500)
    tw.advance(HOUR_MS)
    s0 = tw.th.d.strokes
    assert tw.ask("prime", catheter_nl=250_000)["state"] == "priming"
    tw.th.prime(250_000)
    tw.advance(1404_000)  # 1560 strokes x 0.9 s: catheter 0.25 mL + tubing 0.140 mL
    assert tw.th.d.strokes - s0 == 1560 + 0  # the paused therapy owes nothing yet
    st = tw.client.status()
    assert st["state"] == "running" and st["therapy"]["primed_nl"] == 390_000
    tw.ask("refill", removed_nl=18_000_000, added_nl=20_000_000, concentration=2000)
    tw.th.refill(20_000_000, 2000)
    bridge = tw.client.status()["therapy"]["bridge"]
    assert bridge == {"dead_volume_nl": 390_000, "pushed_nl": 0, "old_concentration": 500}
    assert tw.client.status()["rate_nl_per_day"] == 1_000_000  # old drug's volume rate
    tw.advance(int(390_000 / 1_000_000 * 86_400_000) + 100)  # 1560 strokes at 1 mL/day
    st = tw.client.status()
    assert "bridge" not in st["therapy"] and st["rate_nl_per_day"] == 250_000


def test_refusals_name_the_limit_and_change_nothing(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        from host_tools.errors import DeviceRefused
        import pytest

        with pytest.raises(DeviceRefused, match="never been filled"):
            c.program(mode="continuous", dose_mcg=500, override="new pump: first program")
        c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
        for args, words in [
            ({"mode": "continuous", "dose_mcg": 20}, "outside the pump's rate range 0.048..24 mL/day"),
            ({"mode": "continuous", "dose_mcg": 13_000}, "outside the pump's rate range"),
            ({"mode": "continuous", "dose_mcg": "500"}, "dose_mcg must be a whole number"),
            ({"mode": "flex", "days": {"all": [[420, 300]] * 2}}, "increasing times"),
            ({"mode": "flex", "days": {"mon": [[0, 300]]}}, "missing: tue"),
            ({"mode": "periodic", "basal_mcg": 200, "bolus_mcg": 50, "every_s": 3600, "over_s": 3600},
             "over_s 3600 must be shorter than every_s 3600"),
            ({"mode": "stop"}, "needs a reason"),
            ({"mode": "warp"}, "mode must be one of"),
        ]:
            with pytest.raises(DeviceRefused, match=words):
                c.program(**args)
        with pytest.raises(DeviceRefused, match="not in the drug library"):
            c.refill(removed_nl=0, added_nl=1_000_000, concentration=750)
        with pytest.raises(DeviceRefused, match="outside 1..20000000"):
            c.refill(removed_nl=0, added_nl=30_000_000, concentration=500)
        with pytest.raises(DeviceRefused, match="on top of running therapy"):
            c.bolus(dose_mcg=50, over_s=3600)
        st = c.status()
        assert st["state"] == "stopped" and st["mode"] == "stopped" and st["therapy"]["strokes"] == 0


def test_steady_state_stroke_step_allocates_nothing_on_the_vm():
    exe = Path(sys.executable).parent / "micropython"
    r = subprocess.run([str(exe), "-X", "heapsize=192K", str(ROOT / "tests" / "mpy" / "steady_step.py"),
                        str(ROOT / "firmware")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["OK", "2000"], r.stdout + r.stderr


def test_a_module_dropped_after_a_call_is_freed_on_the_vm(tmp_path):
    """A request module is imported per call and dropped after it (Device.call): on the real VM,
    with the mpy-cross build, dropping gives its heap back, and only because the module is also
    taken off its (resident) package; a pop from sys.modules alone keeps it all."""
    from host_tools.firmware_build import build

    build(tmp_path / "build")
    exe = Path(sys.executable).parent / "micropython"
    r = subprocess.run([str(exe), "-X", "heapsize=192K", str(ROOT / "tests" / "mpy" / "unload.py"),
                        str(tmp_path / "build")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split()[0] == "OK", r.stdout + r.stderr
    loaded, kept_by_drop, kept_by_pop = map(int, r.stdout.split()[1:])
    assert loaded > 2000 and kept_by_drop <= 128 and kept_by_pop > loaded - 256, r.stdout
