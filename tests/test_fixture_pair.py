"""The bench on two emulated RP2040s (spec §10, issue 15): the pump firmware and the HIL fixture
firmware (hil/fixture/) on two chips of one clock, wired as docs/hil.md draws the bench
(hil/rp2040/pair.js), both flashed with `itbpump flash`, then a scenario through the `board` back
end over the two emulated serial ports. Skipped with one line without the RP2040 test equipment
(ITBPUMP_PICO_DIR, docs/rp2040.md). One bench for the module, in order (make test: --dist loadfile)."""

from __future__ import annotations

import time

import pytest

from hil import runner
from hil.board_rig import FixtureLink
from hil.rp2040.board import needs_equipment
from hil.rp2040.pair import Pair
from host_tools import cli
from host_tools.client import PumpClient
from host_tools.errors import PumpError

pytestmark = needs_equipment()

SCENARIO = "hil/scenarios/bench_strokes_stall_and_power_cut_in_minutes.toml"
STEP_HIGH_US, STEP_PERIOD_US = 5, 1000  # firmware/hal/rp2.py: the pump's fastest STEP pulses (~1 kHz)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    p = Pair(tmp_path_factory.mktemp("bench")).start()
    yield p
    p.stop()


def wait_fixture_ms(fx: FixtureLink, until_ms: float, within_s: float = 900) -> dict:
    """Until the fixture's clock (chip time) reaches until_ms; a loaded host slows it down, so
    the wall-clock bound is only a backstop."""
    end = time.monotonic() + within_s
    while True:
        s = fx.request("status")
        if s["ms"] >= until_ms or time.monotonic() > end:
            return s
        time.sleep(0.2)


def test_the_fixture_board_is_flashed_with_itbpump_flash_and_powers_the_pump(bench, capsys):
    assert cli.main(["--port", bench.fixture_port, "--timeout", "10", "flash", "--fixture"]) == 0
    assert "the fixture answers hello" in capsys.readouterr().out
    fx = FixtureLink(bench.fixture_port)
    s = fx.request("status")
    assert s["battery_mv"] == 3000 and s["power"] and not s["run_held"]
    time.sleep(0.5)  # the RC filter settles (10 ms) and the pump's supply comes up
    st = bench.state()
    assert st["dut"]["on"] and abs(st["vsys_mv"] - 3000) <= 5, st
    fx.close()


def test_the_fixture_counts_every_step_pulse_at_the_pumps_fastest_rate(bench):
    """Pulse trains on the fixture's STEP input, timed on the chip's clock: the pump's own (5 us
    high every 1 ms) must all count; faster ones show the margin (printed, not asserted)."""
    fx = FixtureLink(bench.fixture_port)
    counted = {}
    for period_us, n in ((STEP_PERIOD_US, 800), (100, 400), (50, 400), (20, 400)):
        before = fx.request("status")["steps"]
        done_ms = bench.pulses(pin=2, n=n, period_us=period_us, high_us=STEP_HIGH_US)
        fx_ms = fx.request("status")["ms"]
        wait_fixture_ms(fx, fx_ms + (done_ms - bench.state()["now_ms"]) + 50)
        counted[period_us] = (fx.request("status")["steps"] - before, n)
    print("fixture STEP count (counted, sent) by period in us:", counted)
    assert counted[STEP_PERIOD_US] == (800, 800)
    assert counted[100] == (400, 400)  # 10x the pump's rate
    fx.close()


def test_the_pump_is_flashed_behind_the_fixtures_maintenance_jumper(bench, capsys):
    fx = FixtureLink(bench.fixture_port)
    fx.request("jumper on")
    fx.request("cut 300")
    time.sleep(3)
    assert cli.main(["--port", bench.dut_port, "--timeout", "10", "flash"]) == 0
    out = capsys.readouterr().out
    assert "new role keys" in out and "remove the maintenance jumper" in out, out
    fx.request("jumper off")
    cut_ms = fx.request("cut 300")["ms"]
    while True:  # the firmware's first boot, within 2 min of the chip's time
        try:
            with PumpClient(bench.dut_port, timeout=10, retries=1) as c:
                assert c.status()["state"] == "stopped"
                break
        except PumpError:
            assert fx.request("status")["ms"] - cut_ms < 120_000, bench.state()
            time.sleep(1)
    fx.close()


def test_the_fixture_counts_the_pumps_own_strokes_and_every_step_edge(bench):
    """Through the programmer link a refill and a program, then half a minute of strokes: the
    pump's stroke count, the fixture's rotor pulses and strokes, and the emulator's own record of
    every STEP edge on the pump's pin all agree."""
    fx = FixtureLink(bench.fixture_port)
    with PumpClient(bench.dut_port, timeout=10) as c:
        c.authenticate("clinician")
        c.run("refill", removed_nl=0, added_nl=20_000_000, concentration=50)
        fx.request("zero")  # the pump is stopped: nothing moves until the program
        edges0, s0 = bench.state()["dut"]["steps"], c.status()["therapy"]["strokes"]
        c.run("program", mode="continuous", dose_mcg=200)  # 4 mL/day: a stroke every 5.4 s
        wait_fixture_ms(fx, fx.request("status")["ms"] + 30_000)
        for _ in range(5):  # three readings with no STEP edge between them (no stroke under way)
            before = bench.state()["dut"]["steps"]
            pump = c.status()["therapy"]["strokes"] - s0
            s = fx.request("status")
            if bench.state()["dut"]["steps"] == before:
                break
    edges = before - edges0
    assert pump >= 4, (pump, s)
    assert s["strokes"] == s["rotor_pulses"] == pump and s["steps"] == edges == 8 * pump, (s, edges, pump)
    fx.close()


def test_a_scenario_runs_through_the_board_back_end_over_the_two_ports(bench, tmp_path, capsys):
    fx = FixtureLink(bench.fixture_port)
    fx.request("zero")
    edges0 = bench.state()["dut"]["steps"]
    fx.close()
    t0 = time.monotonic()
    rc = runner.main(["run", SCENARIO, "--rig", "board", "--dut", bench.dut_port, "--fixture", bench.fixture_port,
                      "--junit", str(tmp_path / "junit.xml")])
    out = capsys.readouterr().out
    fx = FixtureLink(bench.fixture_port)
    s = fx.request("status")
    print(out, f"scenario wall time {time.monotonic() - t0:.0f} s; fixture {s}")
    assert rc == 0 and "1 passed" in out, (out, s)
    # the fixture missed no STEP edge the pump made (the emulator's record), through a power cut
    assert s["steps"] == bench.state()["dut"]["steps"] - edges0, s
    fx.close()
