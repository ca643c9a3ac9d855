"""Power cuts and crashes restart the VM, never the port; virtual time is exact and wraps like a Pico's."""

from __future__ import annotations

import os
import signal
import time

from host_tools.client import PumpClient

TICKS_PERIOD = 1 << 30


def wait_for_alarm(client: PumpClient, code: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in client.poll_alarms(wait=0.1):
            if e["code"] == code and e["event"] == "raised":
                return e
    raise AssertionError(f"no unsolicited '{code}' alarm frame; got {client.alarm_events}")


def test_power_cut_mid_session_comes_back_on_the_same_port(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        serial_no = c.identity["serial"]
        assert c.status()["alarms"] == []
        info = vpico.power_cut()
        assert info["port"] == vpico_port and info["boots"] == 2 and info["vm_on"]
        # the open session sees the reboot as an unsolicited alarm frame ...
        event = wait_for_alarm(c, "reset_recovered")
        assert event["priority"] == "non_critical"
        # ... and keeps working through the same port, with the same identity
        assert c.hello()["serial"] == serial_no
        alarms = c.status()["alarms"]
        assert [a["code"] for a in alarms] == ["reset_recovered"]
        assert alarms[0]["acknowledged"] is False


def test_firmware_crash_is_restarted_as_a_watchdog_reset(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        assert c.status()["alarms"] == []  # first boot finished: identity provisioned
    before = vpico.info()
    os.kill(before["vm_pid"], signal.SIGKILL)  # the VM dies on its own, not by the rig
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = vpico.info()
        if info and info["boots"] == 2 and info["vm_on"]:
            break
        time.sleep(0.05)
    assert info["port"] == before["port"] and info["vm_pid"] != before["vm_pid"]
    with PumpClient(vpico_port) as c:
        assert [a["code"] for a in c.status()["alarms"]] == ["reset_recovered"]


def test_manual_clock_moves_only_on_advance_and_exactly(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        t0 = c.status()["clock"]
        time.sleep(1.2)
        assert c.status()["clock"] == t0  # lockstep: wall time does not move it
        assert vpico.advance(90 * 60_000) == 90 * 60_000
        assert c.status()["clock"] == t0 + 90 * 60


def test_ticks_start_a_minute_before_the_wrap_and_wrap(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        start = c.diag()["ticks_ms"]
        assert start == TICKS_PERIOD - 60_000
        vpico.advance(2 * 60_000)
        assert c.diag()["ticks_ms"] == 60_000  # wrapped at 2**30, as on a Pico


def test_virtual_time_survives_power_cut_and_off_time(vpico, vpico_port):
    vpico.advance(3_600_000)
    with PumpClient(vpico_port) as c:
        t0 = c.status()["clock"]
    vpico.power_cut(off_ms=600_000)
    with PumpClient(vpico_port) as c:
        assert c.status()["clock"] == t0 + 600
        assert c.diag()["ticks_ms"] == TICKS_PERIOD - 60_000  # ticks restart at boot
    assert vpico.info()["vnow_ms"] == 4_200_000


def test_stop_and_start_keeps_the_board(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        serial_no = c.identity["serial"]
    vpico.advance(60_000)
    vpico.stop()
    assert vpico.info() is None
    info = vpico.start(clock="manual")
    assert info["vnow_ms"] == 60_000
    with PumpClient(info["port"]) as c:
        assert c.identity["serial"] == serial_no


def test_motor_stall_outlasts_a_power_cut(vpico):
    vpico.rig("battery 2400")
    vpico.rig("stall 1")
    assert vpico.hardware()["stalled"] == 1
    vpico.power_cut()
    hw = vpico.hardware()
    assert hw["stalled"] == 1 and hw["battery_mv"] == 2400
    vpico.rig("stall 0")
    vpico.power_cut()
    assert vpico.hardware()["stalled"] == 0


def test_bad_rig_lines_are_answered_not_fatal(vpico):
    from hil.vpico.control import SimError
    import pytest
    for line in ("battery x", "stall", "adv 5", "warp 9"):
        with pytest.raises(SimError):
            vpico.rig(line)
    assert vpico.info()["boots"] == 1  # the VM never crashed


def test_reservoir_size_is_a_property_of_the_board(vpico):
    from hil.vpico.control import SimError
    import pytest
    vpico.stop()
    with pytest.raises(SimError, match="has a 20 mL reservoir"):
        vpico.start(clock="manual", reservoir=40)
    assert vpico.start(clock="manual")["reservoir_ml"] == 20


def test_empty_rig_line_is_answered_and_stall_values_parse_as_numbers(vpico):
    from hil.vpico.control import SimError
    import pytest
    with pytest.raises(SimError, match="empty rig line"):
        vpico.rig("   ")
    vpico.rig("stall 01")
    assert vpico.hardware()["stalled"] == 1
    vpico.power_cut()
    assert vpico.hardware()["stalled"] == 1
