"""Alarms say what happened and what to do, with the numbers (issue 11 item 4), on a virtual Pico:
the reservoir left and the refill-by date, restart attempts of a stall, days to end of service;
the alarm date is when the alarm fired, never "now"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from host_tools import alarm_words

ITBPUMP = str(Path(sys.executable).parent / "itbpump")
TICK_MS = 600_000


def run(port: str, *argv: str) -> str:
    r = subprocess.run([ITBPUMP, "--port", port, *argv], capture_output=True, text=True, timeout=60,
                       env={**os.environ})
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_the_host_knows_the_spec_s_90_days_from_eri_to_eos():
    from alarms import rules as alarm_rules  # the firmware's, under CPython

    assert alarm_words.EOS_AFTER_DAYS * 86400 == alarm_rules.EOS_AFTER_S


def test_low_reservoir_says_what_is_left_and_when_to_refill_and_its_date_is_when_it_fired(vpico, vpico_port):
    run(vpico_port, "refill", "--removed", "0", "--added", "2.5", "--concentration", "500", "--yes")
    run(vpico_port, "program", "continuous", "--dose", "100", "--yes")  # 0.2 mL/day: 2 mL in 2.5 days
    before = json.loads(run(vpico_port, "--json", "status"))
    vpico.advance(3 * 86_400_000)
    s = json.loads(run(vpico_port, "--json", "status"))
    low = next(a for a in s["alarms"] if a["code"] == "low_reservoir")
    assert s["alarm_date"] == low["since"] != s["clock"]  # when it fired, not "now"
    assert abs((_t(low["since"]) - _t(before["alarm_date"]))) <= 4 * 3600  # as predicted (to a stroke or so)
    text = run(vpico_port, "status")
    assert "low reservoir (non-critical" in text and "refill by the refill date" in text
    assert f"{s['reservoir_ml']:.2f} mL left; the reservoir reaches its empty level (the refill-by date)" in text


def test_stall_and_battery_alarms_say_what_the_pump_does_and_when(vpico, vpico_port):
    run(vpico_port, "refill", "--removed", "0", "--added", "20", "--concentration", "500", "--yes")
    run(vpico_port, "program", "continuous", "--dose", "100", "--yes")
    vpico.rig("stall 1")
    vpico.advance(3_600_000)
    text = run(vpico_port, "status")
    assert "delivery is halted and the pump retries" in text
    assert "restart attempts failed so far; about" in text and "mL (" in text and "not delivered since" in text
    a = json.loads(run(vpico_port, "--json", "alarms"))["alarms"]
    assert next(x for x in a if x["code"] == "motor_stall")["restarts_failed"] >= 1
    vpico.rig("stall 0")
    vpico.rig("battery 2650")
    vpico.advance(TICK_MS)
    text = run(vpico_port, "alarms")
    assert "battery replacement indicator (ERI)" in text and "end of service about" in text
    text = run(vpico_port, "status")
    assert "end of service about" in text and (", in 89 days" in text or ", in 90 days" in text), text


def _t(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
