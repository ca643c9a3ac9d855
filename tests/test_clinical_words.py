"""Clinical words in every refusal (issue 11 item 1): no device field name, device unit, error-code
tag or state identifier reaches a person, in text or in --json.

Two walks: every field of every request (the device-level cases of test_field_limits.py, and the
safety limits) refused by the CPython device and rendered by the host; then every CLI command's
refusal paths, run as a user runs them against a virtual Pico.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import test_field_limits as cases
from host_tools import fields, refusals
from host_tools.errors import refusal

pytestmark = pytest.mark.usefixtures("fast_calls")

ITBPUMP = str(Path(sys.executable).parent / "itbpump")

# what a person must never read: device units, minutes after midnight, device seconds as numbers,
# error-code tags, and any snake_case identifier (device fields, states, alarm codes)
BANNED = re.compile(r"\bnL\b|\bseconds?\b|minutes after midnight|\b\d{3,} s\b|\[[a-z_: ]+\]"
                    r"|\b[a-z]+(?:_[a-z0-9]+)+\b")
JSON_DURATIONS = {"every_s", "over_s", "lockout_s", "retry_in_s", "expires_s"}  # seconds: a user unit
JSON_CODES = {"name", "limit"}  # values that are codes for programs (error and limit names)


def clean_text(text: str) -> None:
    found = BANNED.findall(text)
    assert not found, (found, text)


def clean_json(doc: object, key: str = "") -> None:
    """Keys in user units (no *_nl, no minutes, no device seconds); values free of device names."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            assert not re.search(r"_nl\b|_nl_|_min$", k) and (not k.endswith("_s") or k in JSON_DURATIONS), k
            clean_json(v, k)
    elif isinstance(doc, list):
        for v in doc:
            clean_json(v, key)
    elif isinstance(doc, str) and key not in JSON_CODES:
        assert "nL" not in doc.split() and not set(re.findall(r"[a-z_]+", doc)) & (fields.DEVICE_NAMES - {
            f.json for f in fields.FIELDS.values()}), (key, doc)


def rendered(cmd: str, body: dict, may_override: bool = True) -> tuple[str, dict]:
    e = refusal(body)
    return refusals.text(cmd, e, may_override), refusals.json_doc(cmd, e, may_override)


# -- every field of every request, refused by the device ----------------------------------------
@pytest.mark.parametrize("cmd, args, code, words", cases.FIELD_CASES)
def test_every_field_refusal_renders_in_clinical_words(flash, cmd, args, code, words):
    pump = cases.running(flash)
    pump.auth_for(cmd, args)
    good, body = pump.send(cmd, **args)
    assert not good and body["code"] == code, body
    text, doc = rendered(cmd, body)
    clean_text(text)
    clean_json(doc)
    if "field" in body and fields.field(cmd, body["field"]):
        f = fields.field(cmd, body["field"])
        assert f.option in text, text
        assert doc["field"] == f.json and doc["option"] == f.option


def test_every_device_field_is_in_the_table():
    """Each field the device can refuse (every case above) has its option, unit and JSON name."""
    seen = set()
    for p in cases.FIELD_CASES:
        cmd, args = p.values[0], p.values[1]
        seen |= {(cmd, k) for k in args}
    seen |= {("program", "step_start_min"), ("program", "step_dose_mcg")}
    missing = [k for k in seen if k not in fields.FIELDS and k[1] not in ("titration",)]
    assert not missing, missing


def test_the_issue_example_names_the_option_and_the_reservoir(flash):
    pump = cases.running(flash)
    pump.auth_for("refill", {})
    good, body = pump.send("refill", removed_nl=0, added_nl=25_000_000, concentration=500)
    text, doc = rendered("refill", body)
    assert text == "the pump refused: --added 25.00 mL is more than the 20.00 mL the reservoir holds"
    assert doc["field"] == "added_ml" and doc["value"] == 25.0 and doc["max"] == 20.0 and doc["unit"] == "mL"


@pytest.mark.parametrize("limit, may, args", [
    ("titration", False, {"mode": "continuous", "dose_mcg": 200}),
    ("decrease", True, {"mode": "continuous", "dose_mcg": 50}),
])
def test_limit_refusals_render_in_clinical_words(flash, limit, may, args):
    pump = cases.running(flash)
    pump.auth_for("program", args)
    good, body = pump.send("program", **args)
    assert not good and body["limit"] == limit, body
    text, doc = rendered("program", body, may)
    clean_text(text)
    clean_json(doc)
    assert ("--override" in text) is may


def test_limit_renderer_tolerates_keys_it_does_not_know():
    body = {"code": 11, "error": "limit", "limit": "titration", "override": False, "text": "titration limit: no",
            "new_mcg": 140, "reference_mcg": 100, "top_nl_per_day": 260_000, "since_s": 100}
    text, doc = rendered("program", body)
    assert text == "the pump refused: titration limit: no"
    assert doc["new_mcg"] == 140 and doc["top_ml_per_day"] == 0.26 and doc["since"].endswith("Z")
    clean_json(doc)


# -- every CLI command's refusal paths, as a user meets them ------------------------------------
CLI_REFUSALS = [
    # (argv, words the one line must hold); refill first fills the pump, then the others
    (["refill", "--removed", "0", "--added", "25", "--concentration", "500"], ["--added 25.00 mL", "20.00 mL"]),
    (["refill", "--removed", "30", "--added", "20", "--concentration", "500"], ["--removed 30.00 mL"]),
    (["refill", "--removed", "0", "--added", "20", "--concentration", "750"], ["--concentration 750", "drug library"]),
    (["refill", "--removed", "0", "--added", "abc", "--concentration", "500"], ["--added"]),
    (["prime", "--catheter-volume", "2"], ["--catheter-volume 2.00 mL", "1.00 mL"]),
    (["program", "continuous", "--dose", "20000"], ["--dose 20000 mcg/day", "12000 mcg/day", "500 mcg/mL"]),
    (["program", "continuous", "--dose", "1000"], ["initial-dose cap", "--override"]),
    (["program", "continuous", "--dose", "ten"], ["--dose"]),
    (["program", "flex", "--step", "07:00=20000"], ["--step (its dose) 20000 mcg/day"]),
    (["program", "periodic", "--basal", "100", "--bolus", "10", "--every", "5m", "--over", "1m"],
     ["--every 5 min", "10 min"]),
    (["program", "periodic", "--basal", "100", "--bolus", "10", "--every", "6", "--over", "1m"], ["--every", "unit"]),
    (["program", "stop", "--reason", " "], ["--reason"]),
    (["bolus", "--dose", "500", "--over", "1h"], ["bolus cap"]),
    (["bolus", "--dose", "50", "--over", "2d"], ["--over 2 d", "1 d"]),
    (["clock", "--utc-offset", "+15:00"], ["--utc-offset"]),
    (["clock", "--set", "1999-01-01T00:00:00Z"], ["--set"]),
    (["limits", "--initial-cap", "5000"], ["--initial-cap 5000 mcg/day", "2000 mcg/day"]),
    (["limits", "--bolus-cap", "600"], ["--bolus-cap 600 mcg", "500 mcg"]),
    (["limits", "--titration", "50"], ["--titration"]),
    (["limits", "--low-reservoir", "9"], ["--low-reservoir"]),
    (["ptm", "--enable", "--dose", "500", "--over", "10m", "--max-per-day", "4", "--lockout", "3h"],
     ["--dose 500 mcg", "100 mcg"]),
    (["ptm", "--enable", "--dose", "10", "--over", "30s", "--max-per-day", "4", "--lockout", "3h"],
     ["--over 30 s", "1 min"]),
    (["ptm", "--enable", "--dose", "10", "--over", "1m", "--max-per-day", "4", "--lockout", "10m"],
     ["--lockout 10 min", "15 min"]),
    (["ptm", "--enable", "--dose", "10", "--over", "1m", "--max-per-day", "40", "--lockout", "3h"],
     ["--max-per-day 40", "24"]),
    (["patient-bolus"], ["patient bolus is off"]),
    (["log", "--last", "5000"], ["--last"]),
]


def test_every_cli_refusal_is_in_clinical_words(vpico_port):
    env = {**os.environ, "ITBPUMP_PORT": vpico_port}
    run = lambda *a: subprocess.run([ITBPUMP, *a], capture_output=True, text=True, timeout=60, env=env)  # noqa: E731
    r = run("bolus", "--dose", "10", "--over", "1h", "--yes")  # a new pump is stopped: no bolus
    assert r.returncode == 1 and "the pump is stopped" in r.stderr
    clean_text(r.stderr)
    assert run("refill", "--removed", "0", "--added", "20", "--concentration", "500", "--yes").returncode == 0
    for argv, words in CLI_REFUSALS:
        yes = ["--yes"] if argv[0] in ("program", "bolus", "prime", "refill", "ptm", "limits", "clock") else []
        r = run(*argv, *yes)
        assert r.returncode != 0, (argv, r.stdout)
        line = r.stderr.strip().splitlines()[-1]  # a usage error (exit 2) has argparse's usage line first
        assert (r.returncode == 2 or r.stderr.count("\n") == 1) and all(w in line for w in words), (argv, r.stderr)
        clean_text(line)
        clean_text(r.stdout)
        r = run(*argv, *yes, "--json")
        doc = json.loads(r.stdout)
        assert doc["ok"] is False, (argv, doc)
        clean_json(doc)
        clean_text(doc["error"])


# -- alarms say what to do; the minimum rate says why (issue 11 item 4, in part) ----------------
def test_status_at_minimum_rate_says_why_and_shows_no_flex_step():
    from host_tools import render

    s = {"state": "minimum_rate", "mode": "flex", "daily_dose_mcg": 400, "rate_ml_per_day": 0.048,
         "concentration_mcg_per_ml": 500, "reservoir_ml": 0.4, "reservoir_capacity_ml": 20.0,
         "alarms": [{"code": "empty_reservoir", "priority": "critical", "since": "2000-01-01T00:00:00Z",
                     "acknowledged": False}],
         "alarm_date": "2000-01-01T00:00:00Z", "refill_date": "2000-01-01T00:00:00Z",
         "clock": "2000-01-01T01:00:00Z", "utc_offset": "+01:00", "firmware_version": "0.2.0",
         "serial": "ITB-1", "port": "/dev/x",
         "therapy": {"flex_step": {"start_min": 420, "dose_mcg": 300}, "strokes": 5}}
    text = render.status_text(s, "virtual-pico")
    assert "flex step" not in text
    assert "  state          minimum rate (keeps the catheter open: empty reservoir; the programmed therapy is " \
           "suspended)" in text
    assert "refill now" in text and "2000-01-01 02:00 local time (UTC+01:00)" in text
    clean_text(text)


def test_every_alarm_says_what_to_do():
    from host_tools import alarm_words, render

    codes = list(alarm_words.CATALOGUE)
    assert set(codes) == {"low_reservoir", "empty_reservoir", "motor_stall", "battery_eri", "battery_eos",
                          "battery_fault", "memory_noncritical", "memory_critical", "reset_recovered"}
    a = {"alarms": [{"code": c, "priority": "critical", "since": "2000-01-01T00:00:00Z", "acknowledged": False}
                    for c in codes], "acknowledged": codes[:2]}
    text = render.alarms_text(a)
    for c in codes:
        assert alarm_words.CATALOGUE[c].advice in text
    clean_text(text)


def test_every_cli_answer_is_in_clinical_words(vpico, vpico_port):
    """The answers, not only the refusals: every command a clinician runs, in text."""
    env = {**os.environ, "ITBPUMP_PORT": vpico_port}

    def run(*argv: str) -> str:
        r = subprocess.run([ITBPUMP, *argv], capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, (argv, r.stdout, r.stderr)
        return r.stdout

    outputs = [run("status"), run("limits"), run("clock"), run("log"), run("alarms"), run("ptm")]
    outputs.append(run("refill", "--removed", "0", "--added", "20", "--concentration", "500", "--yes"))
    outputs.append(run("prime", "--catheter-volume", "0.25", "--yes"))
    vpico.advance(3_600_000)
    outputs.append(run("program", "continuous", "--dose", "100", "--yes"))
    outputs.append(run("program", "flex", "--step", "07:00=90", "--step", "22:00=120", "--yes"))
    outputs.append(run("program", "periodic", "--basal", "80", "--bolus", "5", "--every", "6h", "--over", "15m",
                       "--yes"))
    outputs.append(run("bolus", "--dose", "20", "--over", "30m", "--yes"))
    outputs.append(run("ptm", "--enable", "--dose", "5", "--over", "10m", "--max-per-day", "2", "--lockout", "3h",
                       "--yes"))
    outputs.append(run("refill", "--removed", "18", "--added", "20", "--concentration", "1000", "--yes"))
    outputs.append(run("limits", "--origin", "cerebral", "--yes"))
    outputs.append(run("clock", "--utc-offset", "+01:00", "--yes"))
    vpico.advance(2 * 3_600_000)
    outputs += [run("patient-bolus"), run("status"), run("ptm"), run("log", "--last", "40"), run("alarms")]
    for text in outputs:
        clean_text(text)


def test_alarms_and_status_say_an_alarm_s_time_in_the_same_local_time(vpico, vpico_port):
    """`alarms` printed its times in UTC while `status` printed the pump's local time: the
    `alarms` answer carries the pump's UTC offset like `log` and `ptm` do."""
    env = {**os.environ, "ITBPUMP_PORT": vpico_port}

    def run(*argv: str) -> str:
        r = subprocess.run([ITBPUMP, *argv], capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, (argv, r.stdout, r.stderr)
        return r.stdout

    run("clock", "--utc-offset", "+05:30", "--yes")
    vpico.power_cut()  # reset_recovered, since now
    since = re.compile(r"since (\d{4}-\d\d-\d\d \d\d:\d\d)")
    in_status = since.findall(run("status"))
    in_alarms = since.findall(run("alarms"))
    assert in_status and in_status == in_alarms, (in_status, in_alarms)
    clock = re.search(r"clock\s+(\d{4}-\d\d-\d\d \d\d:\d\d) local time \(UTC\+05:30\)", run("status"))
    assert clock and in_alarms[0] <= clock.group(1), (in_alarms, clock)
    doc = json.loads(run("--json", "alarms"))
    assert doc["utc_offset"] == "+05:30" and doc["alarms"][0]["since"].endswith("Z"), doc
