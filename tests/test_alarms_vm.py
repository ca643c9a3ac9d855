"""Alarms end to end on the virtual Pico (MicroPython VM, lockstep clock): the plant's faults
through the rig, the tones the buzzer played (rig line `tones`), status, the event log, the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from therapy.units import STROKE_NL  # the firmware's stroke volume

from host_tools.client import PumpClient
from host_tools.log_events import sentence

ITBPUMP = str(Path(sys.executable).parent / "itbpump")
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
TICK_MS = 600_000
CRITICAL = [(1320, 500), (880, 500)] * 3 + [(0, None)]
NON_CRITICAL = [(1000, 1000), (0, None)]


def tones(vpico, dropped: bool = False) -> list[tuple[int, int]]:
    """Buzzer changes since the last read: (virtual ms, Hz); the rig keeps the last 48."""
    words = vpico.rig("tones").split()
    assert words[0] == "tones" and (dropped or words[1] == "0"), words[:2]
    return [(int(v), int(f)) for v, f in (w.split(":") for w in words[2:])]


def patterns(changes: list[tuple[int, int]]) -> list[tuple[int, list[tuple[int, int | None]]]]:
    """The changes cut into patterns: (start ms, [(Hz, ms to the next change)], ending in silence)."""
    out: list[tuple[int, list[tuple[int, int | None]]]] = []
    cur: list[tuple[int, int | None]] = []
    for i, (t, hz) in enumerate(changes):
        if not cur:
            out.append((t, cur))
        cur.append((hz, changes[i + 1][0] - t if hz and i + 1 < len(changes) else None))
        if not hz:
            cur = []
    return out


def events(c: PumpClient, event: str) -> list[str]:
    """This event's records as "codes numbers" (device units), as the VM's firmware wrote them."""
    return [" ".join(e.get("codes", []) + [str(x) for x in e.get("n", [])]) for e in c.log(200)["entries"]
            if e["event"] == event]


def alarms(c: PumpClient) -> dict[str, dict]:
    return {a["code"]: a for a in c.status()["alarms"]}


def test_vm_reservoir_alarms_tones_minimum_rate_ack_and_refill(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(removed_nl=0, added_nl=2_500_000, concentration=500)
        c.program(mode="continuous", dose_mcg=500, override="new pump: first program")  # 1 mL/day: a stroke every 21.6 s
        st = c.status()
        t0 = st["clock"]
        assert st["alarm_date"] == t0 + 43_200 and st["refill_date"] == t0 + 2 * 86_400
    vpico.advance(12 * HOUR_MS + 2000)  # 2000 strokes: 2.0 mL left
    with PumpClient(vpico_port) as c:
        low = alarms(c)["low_reservoir"]
        assert low["priority"] == "non_critical" and low["since"] == t0 + 43_200
        assert c.status()["state"] == "running"
    assert patterns(tones(vpico)) == [(12 * HOUR_MS, NON_CRITICAL)]
    vpico.advance(HOUR_MS)
    assert patterns(tones(vpico)) == [(13 * HOUR_MS, NON_CRITICAL)]  # every 60 min
    vpico.advance(35 * HOUR_MS + 3000)  # 8000 strokes: 0.5 mL left, at 48 h; its pattern played
    with PumpClient(vpico_port) as c:
        st = c.status()
        assert st["state"] == "minimum_rate" and st["rate_nl_per_day"] == 48_000
        empty = alarms(c)["empty_reservoir"]
        assert empty["priority"] == "critical" and empty["since"] == t0 + 2 * 86_400
    heard = patterns(tones(vpico, dropped=True))  # 35 h of hourly tones: more than the rig keeps
    crit = [(t, p) for t, p in heard if t >= 2 * DAY_MS]
    assert crit == [(2 * DAY_MS + k * TICK_MS, CRITICAL) for k in range(len(crit))] and len(crit) == 1
    vpico.advance(HOUR_MS)
    assert [t for t, p in patterns(tones(vpico))] == [2 * DAY_MS + k * TICK_MS for k in range(1, 7)]
    with PumpClient(vpico_port) as c:
        answer = c.alarms(ack=True)
        assert sorted(answer["acknowledged"]) == ["empty_reservoir", "low_reservoir"]
        assert [a["code"] for a in answer["alarms"]] == ["empty_reservoir", "low_reservoir"]
    vpico.advance(2 * HOUR_MS)
    assert tones(vpico) == [(vpico.hardware()["vnow_ms"] - 2 * HOUR_MS, 0)]  # silenced at once, then silent
    with PumpClient(vpico_port) as c:
        assert all(a["acknowledged"] for a in c.status()["alarms"])  # still listed
        left = c.status()["reservoir_nl"]
        answer = c.refill(removed_nl=left, added_nl=20_000_000, concentration=500)
        assert answer["state"] == "running" and answer["rate_nl_per_day"] == 1_000_000
        assert not answer["warnings"] and c.status()["alarms"] == []
        assert events(c, "alarm_raised") == ["low_reservoir 2000000", "empty_reservoir 500000"]
        assert sorted(events(c, "alarm_acked")) == ["empty_reservoir", "low_reservoir"]
        assert sorted(t.split()[0] for t in events(c, "alarm_clear")) == ["empty_reservoir", "low_reservoir"]


def test_vm_incident_2012_2019_permanent_stall(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
        c.program(mode="continuous", dose_mcg=500, override="new pump: first program")
    vpico.advance(HOUR_MS)
    assert vpico.rig("stall 1") == "ok"
    vpico.advance(30_000)
    with PumpClient(vpico_port) as c:
        st = c.status()
        assert st["state"] == "alarm_critical" and st["rate_nl_per_day"] == 0
        assert alarms(c)["motor_stall"]["priority"] == "critical"
        res = st["reservoir_nl"]
    heard = patterns(tones(vpico))
    assert heard[0][1] == CRITICAL
    hw = vpico.hardware()
    vpico.advance(3 * HOUR_MS)
    hw2 = vpico.hardware()
    assert hw2["rotor"] == hw["rotor"] and 17 <= hw2["strokes"] - hw["strokes"] <= 19  # an attempt per tick
    assert vpico.rig("stall 0") == "ok"
    vpico.advance(TICK_MS + 30_000)
    with PumpClient(vpico_port) as c:
        st = c.status()
        assert st["state"] == "running" and st["alarms"] == [] and st["rate_nl_per_day"] == 1_000_000
        # the stalled strokes moved no drug: the reservoir follows the rotor, not the STEP pulses
        assert st["reservoir_nl"] == 20_000_000 - STROKE_NL * vpico.hardware()["rotor"] < res
        assert events(c, "stall_retry") == ["%d" % n for n in (1, 2, 4, 8, 16)]  # the failed attempts
        (cleared,) = events(c, "alarm_clear")
        assert cleared.startswith("motor_stall 1")


def test_vm_incident_2012_2019_intermittent_stall(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
        c.program(mode="continuous", dose_mcg=500, override="new pump: first program")
    assert vpico.rig("stall 120") == "ok"  # the rotor sticks the first 20 min of every 2 h
    vpico.advance(5 * HOUR_MS + 30 * 60_000)  # windows at 0 h, 2 h and 4 h
    with PumpClient(vpico_port) as c:
        raised = [t for t in events(c, "alarm_raised") if t.startswith("motor_stall")]
        cleared = [t for t in events(c, "alarm_clear") if t.startswith("motor_stall")]
        assert len(raised) == len(cleared) == 3 and events(c, "stall_retry")
        st = c.status()
        assert st["state"] == "running" and st["alarms"] == []
    hw = vpico.hardware()
    assert hw["stalled"] == 120 and 0 < hw["strokes"] - hw["rotor"] <= 9


def test_vm_incident_2009_2011_battery_fault_goes_to_minimum_rate(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
        c.program(mode="continuous", dose_mcg=500, override="new pump: first program")
    vpico.advance(HOUR_MS)
    tones(vpico)
    r = subprocess.run([ITBPUMP, "--json", "sim", "fault", "--state-dir", str(vpico.paths.root), "battery-fault"],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert r.returncode == 0 and json.loads(r.stdout) == {"fault": "battery-fault", "on": True}, r.stderr
    assert vpico.hardware()["battery_mv"] == 2100
    vpico.advance(TICK_MS)
    with PumpClient(vpico_port) as c:
        st = c.status()
        assert st["state"] == "minimum_rate" and st["rate_nl_per_day"] == 48_000
        assert alarms(c)["battery_fault"]["since"] == st["clock"]  # at the 10-minute tick
    vpico.advance(10_000)
    assert patterns(tones(vpico)) == [(HOUR_MS + TICK_MS, CRITICAL)]
    vpico.rig("battery 3000")
    vpico.advance(TICK_MS)
    with PumpClient(vpico_port) as c:
        st = c.status()
        assert st["state"] == "running" and st["alarms"] == [] and st["rate_nl_per_day"] == 1_000_000
        assert events(c, "alarm_raised") == ["battery_fault 2100"]
        assert events(c, "alarm_clear") == ["battery_fault 3000"]


def test_vm_battery_eri_then_eos_stops_the_pump(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(removed_nl=0, added_nl=20_000_000, concentration=2000)
        c.program(mode="continuous", dose_mcg=100, override="new pump: first program")  # 0.05 mL/day
    vpico.rig("battery 2650")
    vpico.advance(TICK_MS)
    with PumpClient(vpico_port) as c:
        eri = alarms(c)["battery_eri"]
        assert eri["priority"] == "non_critical" and c.status()["state"] == "running"
    vpico.advance(90 * DAY_MS - 2 * TICK_MS)
    with PumpClient(vpico_port) as c:
        assert "battery_eos" not in alarms(c)
    vpico.advance(2 * TICK_MS)
    with PumpClient(vpico_port) as c:
        st = c.status()
        eos = alarms(c)["battery_eos"]
        assert eos["priority"] == "critical" and eos["since"] - eri["since"] == 90 * 86_400
        assert st["state"] == "alarm_critical" and st["rate_nl_per_day"] == 0  # the pump stops


def test_vm_alarm_test_and_cli(vpico, vpico_port):
    r = subprocess.run([ITBPUMP, "--port", vpico_port, "alarm-test"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "critical then non-critical" in r.stdout, r.stderr
    vpico.advance(10_000)
    heard = patterns(tones(vpico))
    assert [p for _, p in heard] == [CRITICAL, NON_CRITICAL] and heard[1][0] - heard[0][0] == 4000
    vpico.rig("battery 2650")
    vpico.advance(TICK_MS)
    r = subprocess.run([ITBPUMP, "--port", vpico_port, "alarms"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "replacement indicator (ERI)" in r.stdout and "sounding" in r.stdout, r.stderr
    r = subprocess.run([ITBPUMP, "--port", vpico_port, "--json", "alarms", "--ack"], capture_output=True,
                       text=True, timeout=60)
    out = json.loads(r.stdout)
    assert out["acknowledged"] == ["battery_eri"] and out["alarms"][0]["acknowledged"] is True
    assert out["alarms"][0]["since"].endswith("Z")


def test_vm_incident_2011_pocket_fill_refill_warning(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
        c.program(mode="continuous", dose_mcg=500, override="new pump: first program")
    vpico.advance(15 * DAY_MS // 2)
    r = subprocess.run([ITBPUMP, "--port", vpico_port, "refill", "--removed", "2", "--added", "20",
                        "--concentration", "500", "--yes"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "removed 2.000000 mL, expected 12.500000 mL: possible pocket fill, catheter or pump problem" in r.stdout
    with PumpClient(vpico_port) as c:
        (refill,) = [e for e in c.log(200)["entries"] if e["event"] == "refill"][-1:]
        assert refill["n"] == [2_000_000, 12_500_000, 20_000_000, 500, 500, 1]  # the warning in the refill's entry
        assert "(expected 12.50 mL: possible pocket fill, catheter or pump problem)" in sentence(refill)


def test_vm_alarm_paths_run_in_the_small_heap(tmp_path):
    """Every alarm path (nested loads: refill + alarms.rules + storage.state + storage.event_log) in the 72K budget heap."""
    from hil.vpico.control import SimControl

    ctl = SimControl(tmp_path / "small")
    port = ctl.start(clock="manual", fresh=True, heap="88K")["port"]
    try:
        with PumpClient(port) as c:
            c.refill(removed_nl=0, added_nl=2_100_000, concentration=500)
            c.program(mode="continuous", dose_mcg=500, override="new pump: first program")
        ctl.advance(2 * DAY_MS)  # low, then empty: minimum rate
        with PumpClient(port) as c:
            assert c.status()["state"] == "minimum_rate"
            c.alarms(ack=True)
            c.alarm_test()
            assert "warnings" in c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
        ctl.rig("stall 1")
        ctl.advance(HOUR_MS)
        ctl.rig("stall 0")
        ctl.rig("battery 2100")
        ctl.advance(HOUR_MS)
        ctl.rig("battery 3000")
        ctl.advance(HOUR_MS)
        with PumpClient(port) as c:
            st = c.status()
            assert st["state"] == "running" and st["alarms"] == []
            assert c.diag()["mem_free"] > 2 * 1024
        assert ctl.info()["boots"] == 1  # never ran out of memory and reset
    finally:
        ctl.stop()
