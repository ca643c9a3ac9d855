"""The itbpump command as a user runs it: output, --json, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripted_peer import ScriptedPeer

from host_tools import framing

ITBPUMP = str(Path(sys.executable).parent / "itbpump")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([ITBPUMP, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_help_says_not_a_medical_device():
    r = run("--help")
    assert r.returncode == 0 and "not a medical device" in r.stdout


def test_status_human_and_json(vpico_port):
    r = run("--port", vpico_port, "status")
    assert r.returncode == 0, r.stderr
    assert "state          stopped" in r.stdout and "alarms         none" in r.stdout
    r = run("--port", vpico_port, "--json", "status")
    s = json.loads(r.stdout)
    for key in ("state", "mode", "daily_dose_mcg", "rate_ml_per_day", "concentration_mcg_per_ml",
                "reservoir_ml", "alarms", "alarm_date", "refill_date", "clock", "firmware_version"):
        assert key in s
    assert s["clock"].endswith("Z") and s["reservoir_capacity_ml"] == 20.0


def test_port_sim_and_env_resolution(vpico):
    env = {"ITBPUMP_SIM_DIR": str(vpico.paths.root), "ITBPUMP_PORT": "sim"}
    r = run("--json", "status", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["port"] == vpico.info()["port"]


def test_sim_commands(tmp_path):
    d = str(tmp_path / "b")
    r = run("sim", "start", "--state-dir", d, "--clock", "manual", "--fresh", "--reservoir", "40")
    assert r.returncode == 0, r.stderr
    try:
        assert "manual clock" in r.stdout and "40 mL" in r.stdout
        r = run("sim", "advance", "--state-dir", d, "6")
        assert r.returncode == 1 and "has no unit" in r.stderr
        r = run("--json", "sim", "advance", "--state-dir", d, "1d")
        assert json.loads(r.stdout) == {"vnow_ms": 86_400_000}
        r = run("sim", "fault", "--state-dir", d, "lightning")
        assert r.returncode == 1 and "unknown fault 'lightning'" in r.stderr
        r = run("--json", "sim", "fault", "--state-dir", d, "power-cut")
        assert json.loads(r.stdout)["boots"] == 2
        r = run("--json", "sim", "status", "--state-dir", d)
        assert json.loads(r.stdout)["running"] is True
    finally:
        r = run("sim", "stop", "--state-dir", d)
    assert r.returncode == 0 and "stopped" in r.stdout
    r = run("--json", "sim", "status", "--state-dir", d)
    assert json.loads(r.stdout) == {"running": False}


def test_wrong_port_is_one_line():
    r = run("--port", "/dev/does-not-exist", "status")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert "cannot open serial port /dev/does-not-exist" in r.stderr
    r = run("--json", "--port", "/dev/does-not-exist", "status")
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False


@pytest.mark.parametrize("answer,words", [
    (lambda f: None, "no answer from"),
    (lambda f: framing.encode(framing.RESPONSE, f.req_id, b'{"protocol": 2}'), "speaks protocol 2"),
    (lambda f: framing.encode(framing.RESPONSE, f.req_id, b"{}")[:-4] + b"\x07\x00", "CRC check failed"),
])
def test_link_failures_are_one_line_reasons(answer, words):
    peer = ScriptedPeer(answer)
    try:
        r = run("--port", peer.port, "--timeout", "0.3", "status")
    finally:
        peer.close()
    assert r.returncode == 1
    assert words in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr


def test_flash_and_clock_faults_from_the_cli(tmp_path):
    d = str(tmp_path / "f")
    assert run("sim", "start", "--state-dir", d, "--clock", "manual", "--fresh").returncode == 0
    try:
        env = {"ITBPUMP_SIM_DIR": d, "ITBPUMP_PORT": "sim"}
        assert run("refill", "--removed", "0", "--added", "20", "--concentration", "500", "--yes", env=env).returncode == 0
        r = run("sim", "fault", "corrupt-flash", "--state-dir", d)
        assert r.returncode == 0 and "next boot" in r.stdout
        assert run("sim", "fault", "power-cut", "--state-dir", d).returncode == 0
        s = json.loads(run("--json", "status", env=env).stdout)
        assert "memory_noncritical" in [a["code"] for a in s["alarms"]]
        r = run("sim", "fault", "clock-loss", "--off", "--state-dir", d)
        assert r.returncode == 1 and "no --off" in r.stderr
    finally:
        run("sim", "stop", "--state-dir", d)
