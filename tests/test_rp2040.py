"""The product on an emulated RP2040 (spec §10, issue 13): the real rp2 MicroPython image on
rp2040js, hal/rp2.py, `itbpump flash` through real mpremote, the CLI over the board's USB CDC pty,
and the rig playing the fixture on the pins. One board per module, in order: a blank board is
flashed, filled and programmed, then pumps for a fast-forwarded hour, stalls, loses power and is
bitten by its watchdog. Skipped with one line when the MicroPython image and bootrom are absent
(ITBPUMP_PICO_DIR, docs/rp2040.md)."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from host_tools import cli
from host_tools.client import PumpClient
from host_tools.pump_facts import stroke_nl
from host_tools.errors import PumpError
from hil.rp2040.board import Board, needs_equipment

# one board for the module, in order: `make test` runs each file on one worker (--dist loadfile)
pytestmark = needs_equipment()

TIMEOUT = "10"  # s per request: the emulated core runs at about half a real Pico's speed
FIRST_BOOT_TIMEOUT = "40"  # `itbpump flash` waits 7.5 x this for the first boot (300 s, the rig's BOOT_S)
DOSE = 200  # mcg/day, the initial-dose cap
CONC = 500  # mcg/mL
STROKE_NL = stroke_nl()  # the firmware's (dose.py), read as data
STROKES_PER_HOUR = DOSE * 1_000_000 // CONC / STROKE_NL / 24  # 66.7


def itbpump(port: str, *argv: str) -> int:
    return cli.main(["--port", port, "--timeout", TIMEOUT, *argv])


def client(board: Board, within_s: float = 60.0) -> PumpClient:
    """A session once the firmware answers (after a boot it imports its modules from flash)."""
    end = time.monotonic() + within_s
    while True:
        try:
            return PumpClient(board.port, timeout=float(TIMEOUT), retries=1)
        except PumpError as e:
            if time.monotonic() > end:
                raise AssertionError(f"{e}; the board: {board.state()}") from None
            time.sleep(0.5)


def status(board: Board) -> dict:
    with client(board) as c:
        return c.status()


def clock(st: dict) -> int:
    """The pump's clock (device units on the client API: seconds since 2000-01-01 UTC)."""
    return st["clock"]


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    b = Board(tmp_path_factory.mktemp("rp2040") / "dut").start()
    yield b
    b.stop()


def test_a_blank_board_is_flashed_through_mpremote_and_answers(board, capsys):
    # a new pump's first boot is ~8 s of RP2040 CPU: on a host shared with other emulated boards
    # (load 10 on 2 cores) that is over 2 min of wall time, past --timeout 10's 75 s wait
    assert cli.main(["--port", board.port, "--timeout", FIRST_BOOT_TIMEOUT, "flash"]) == 0
    out = capsys.readouterr().out
    assert f"on {board.port}" in out and "new role keys" in out and "accepts the clinician key" in out, out
    st = status(board)
    assert st["firmware_version"] and st["state"] == "stopped", st
    assert st["serial"].startswith("ITB-") and st["serial"] != "ITB-FFFFFFFF"  # its own flash id


def test_refill_and_a_continuous_program_through_the_cli(board):
    board.rtc(set_s=int((datetime(2026, 12, 4, 12) - datetime(2000, 1, 1)).total_seconds()))
    assert itbpump(board.port, "clock", "--set", "2026-12-04T12:00:00Z") == 0
    assert itbpump(board.port, "refill", "--removed", "0", "--added", "20", "--concentration", str(CONC), "--yes") == 0
    assert itbpump(board.port, "program", "continuous", "--dose", str(DOSE), "--yes") == 0
    st = status(board)
    assert st["mode"] == "continuous" and st["daily_dose_mcg"] == DOSE, st


def test_one_fast_forwarded_hour_delivers_the_programmed_rate_in_whole_strokes(board):
    s0 = status(board)["therapy"]["strokes"]
    e0 = board.state()["steps"]
    wall = time.monotonic()
    board.advance(3600)
    wall = time.monotonic() - wall
    s1 = status(board)["therapy"]["strokes"]
    e1 = board.state()["steps"]  # after the status request: a stroke under way has ended
    strokes = s1 - s0
    assert e1 - e0 == 8 * strokes, (e0, e1, s0, s1)
    assert abs(strokes - STROKES_PER_HOUR) <= 1, (strokes, STROKES_PER_HOUR)
    print(f"one simulated hour in {wall:.1f} s wall ({3600 / wall:.0f}x)")


def test_a_stall_raises_motor_stall_and_switches_the_driver_off(board):
    board.tones()  # what sounded before is not this test's
    board.rotor("stalled")
    board.advance(600)
    st = status(board)
    assert "motor_stall" in [a["code"] for a in st["alarms"]], st["alarms"]
    assert board.state()["motor_on"] is False
    heard = {hz for _, hz in board.tones()}  # the buzzer's PWM slice, as the rig reads it
    assert {1320, 880} <= heard, heard  # the critical two-tone pattern (firmware/buzzer.py)
    stalled_at = st["therapy"]["strokes"]
    board.rotor("healthy")
    # spec §5: cleared only when strokes resume: the next 10-minute tick's restart attempt has
    # its rotor pulse (a tick, then a stroke interval); the next tests start from a pumping board
    board.advance(600 + 120)
    st = status(board)
    assert "motor_stall" not in [a["code"] for a in st["alarms"]], st["alarms"]
    assert st["therapy"]["strokes"] > stalled_at, st
    assert itbpump(board.port, "alarms", "--ack") == 0


def _resumed_after(board: Board, before: dict, cause: int) -> None:
    st = status(board)
    assert clock(st) >= clock(before), (before["clock"], st["clock"])  # never moved back
    assert "reset_recovered" in [a["code"] for a in st["alarms"]], st["alarms"]
    assert st["mode"] == "continuous" and st["daily_dose_mcg"] == DOSE, st
    with client(board) as c:
        entries = c.log(last=10)["entries"]
    resets = [e for e in entries if e["event"] == "reset"]
    assert resets and resets[-1]["n"][0] == cause, entries  # its record: hal RESET_* (0 power, 1 watchdog)
    s0 = st["therapy"]["strokes"]
    board.advance(600)
    assert status(board)["therapy"]["strokes"] > s0  # therapy goes on


def test_a_power_cut_resumes_therapy_with_the_clock_running_on(board):
    before = status(board)
    board.power_cut(off_s=120)  # the DS3231 counts on its battery meanwhile
    _resumed_after(board, before, cause=0)
    assert clock(status(board)) - clock(before) >= 120 + 600


def test_a_watchdog_bite_resumes_therapy_from_the_watchdog_scratch_clock(board):
    board.call("rtc_present", on=False)  # no battery-backed clock: SCRATCH carries it
    before = status(board)
    n = len(board.events)
    board.freeze()  # a hung firmware: the watchdog bites within 8.3 s
    board.advance(10)
    assert board.wait_event("reboot", n)["reason"] == "watchdog"
    _resumed_after(board, before, cause=1)


def test_flash_is_refused_while_the_firmware_runs_with_the_jumper_hint(board, capsys):
    assert itbpump(board.port, "flash") == 1
    err = capsys.readouterr().err
    assert "could not enter raw repl" in err.lower() and "maintenance jumper (GP22 to GND)" in err, err
    assert len(err.strip().splitlines()) == 1 and "import" not in err, err  # no probe script in it


def test_reflash_behind_the_jumper_keeps_keys_and_therapy(board, capsys):
    serial = status(board)["serial"]
    board.jumper(True)
    board.power_cut()
    assert itbpump(board.port, "flash") == 0
    out = capsys.readouterr().out
    assert f"Flashed {serial}" in out and "kept" in out and "remove the maintenance jumper" in out, out
    board.jumper(False)
    board.power_cut()
    st = status(board)
    assert st["serial"] == serial and st["mode"] == "continuous" and st["daily_dose_mcg"] == DOSE, st
