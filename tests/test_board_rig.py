"""The real-board back end without boards: what it needs, what it declares, what runs in real time,
and `itbpump flash --fixture`'s plan. The boards themselves: tests/test_fixture_pair.py."""

from __future__ import annotations

from pathlib import Path

from hil import rig as rigs
from hil import runner, scenario
from hil.schema import REAL_TIME_WAIT_MS
from host_tools import cli

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "hil" / "scenarios" / "bench_strokes_stall_and_power_cut_in_minutes.toml"
CLOCKS = {"lockstep_clock", "fast_forward"}  # what moving time needs of a back end (hil/schema.py)


def _scenario(tmp_path: Path, steps: str) -> dict:
    p = tmp_path / "s.toml"
    p.write_text('name = "s"\nproves = "a test"\n' + steps)
    return scenario.load(p)


def test_short_waits_run_in_real_time_longer_ones_and_clock_times_need_a_faster_clock(tmp_path):
    five = f'[[step]]\nadvance = "{REAL_TIME_WAIT_MS // 60_000} min"\n'
    assert not CLOCKS & set(_scenario(tmp_path, five)["needs"])
    assert CLOCKS & set(_scenario(tmp_path, five + '[[step]]\nadvance = "1 s"\n')["needs"])
    assert CLOCKS & set(_scenario(tmp_path, '[[step]]\nuntil = "day 1 09:00"\n')["needs"])
    bench = scenario.load(BENCH)
    assert rigs.BoardRig.capabilities.lacks(bench["needs"]) == [], bench["needs"]


def test_the_board_back_end_names_its_two_ports_when_they_are_missing(capsys):
    assert runner.main(["run", str(BENCH), "--rig", "board"]) == 0
    out = capsys.readouterr().out
    assert "skip bench_strokes_stall_and_power_cut_in_minutes" in out
    assert "--rig board --dut PORT --fixture PORT" in out


def test_dut_and_fixture_ports_belong_to_the_board_back_end(capsys):
    assert runner.main(["run", str(BENCH), "--rig", "sim", "--dut", "/dev/ttyACM0"]) == 2
    assert "--dut and --fixture are the board back end's" in capsys.readouterr().err


def test_a_fixture_port_that_is_not_there_is_named(capsys):
    assert runner.main(["run", str(BENCH), "--rig", "board", "--dut", "/nonexistent/dut",
                        "--fixture", "/nonexistent/fixture"]) == 0
    assert "no fixture board on /nonexistent/fixture" in capsys.readouterr().out
    assert runner.main(["fixture", "--port", "/nonexistent/fixture", "status"]) == 1
    assert "no fixture board on /nonexistent/fixture" in capsys.readouterr().err


def test_flash_fixture_dry_run_builds_the_fixture_firmware_and_opens_no_port(capsys):
    assert cli.main(["--port", "/nonexistent/fixture", "flash", "--fixture", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "of the HIL fixture board" in out and "fixture.mpy main.py" in out and "keys" not in out
