"""Therapy commands (spec §3, §9): what the user types -> the device request, and every refusal.

requests.build() is pure, so most of this runs without a device. A scripted pty peer stands in
for the pump where the client and the CLI's rendering of answers are checked.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from fake_pump import FakePump, write_host_keys

from host_tools import cli, framing, render, requests
from host_tools.client import PumpClient
from host_tools.errors import PumpError, UsageError
from host_tools.units import clock_text, ml_text

ALL7 = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(cli._join_negative_values(list(argv)))


def req(*argv: str) -> tuple[str, dict]:
    return requests.build(parse(*argv))


def refused(*argv: str) -> str:
    with pytest.raises(UsageError) as e:
        req(*argv)
    return str(e.value)


# -- mappings ---------------------------------------------------------------------------------

def test_continuous():
    assert req("program", "continuous", "--dose", "300") == ("program", {"mode": "continuous", "dose_mcg": 300})


def test_flex_same_every_day_sorted():
    cmd, a = req("program", "flex", "--step", "22:00=600", "--step", "07:00=300", "--step", "00:00=450")
    assert cmd == "program"
    assert a == {"mode": "flex", "days": {"all": [[0, 450], [420, 300], [1320, 600]]}}


def test_flex_day_groups_in_order():
    _, a = req("program", "flex", "--day", "mon,tue,wed,thu,fri", "--step", "07:00=300", "--step", "22:00=600",
               "--day", "sat,sun", "--step", "09:00=300", "--step", "23:00=600")
    weekday, weekend = [[420, 300], [1320, 600]], [[540, 300], [1380, 600]]
    assert a["days"] == {"mon": weekday, "tue": weekday, "wed": weekday, "thu": weekday, "fri": weekday,
                         "sat": weekend, "sun": weekend}
    assert list(a["days"]) == list(ALL7)


def test_flex_aliases_and_full_names():
    _, a = req("program", "flex", "--day", "weekdays", "--step", "07:00=300",
               "--day", "Saturday", "--step", "08:00=200", "--day", "sun", "--step", "09:00=100")
    assert a["days"]["fri"] == [[420, 300]] and a["days"]["sat"] == [[480, 200]] and a["days"]["sun"] == [[540, 100]]
    # identical schedules for all seven days are sent as "all"
    _, a = req("program", "flex", "--day", "weekdays", "--step", "07:00=300", "--day", "weekend", "--step", "07:00=300")
    assert a["days"] == {"all": [[420, 300]]}
    _, a = req("program", "flex", "--day", "all", "--step", "07:00=300")
    assert a["days"] == {"all": [[420, 300]]}


def test_flex_thirteen_steps_is_the_limit():
    steps = [x for h in range(13) for x in ("--step", f"{h:02d}:30={100 + h}")]
    _, a = req("program", "flex", *steps)
    assert len(a["days"]["all"]) == 13


@pytest.mark.parametrize("start,start_min", [(None, None), ("08:00", 480), ("23:59", 1439), ("00:00", 0)])
def test_periodic(start, start_min):
    extra = ["--start", start] if start else []
    assert req("program", "periodic", "--basal", "200", "--bolus", "50", "--every", "6h", "--over", "15m", *extra) == (
        "program", {"mode": "periodic", "basal_mcg": 200, "bolus_mcg": 50, "every_s": 21600, "over_s": 900,
                    "start_min": start_min})


def test_stop():
    assert req("program", "stop", "--reason", " infection, explant planned ") == (
        "program", {"mode": "stop", "reason": "infection, explant planned"})


def test_bolus_prime_refill():
    assert req("bolus", "--dose", "50", "--over", "1h30m") == ("bolus", {"dose_mcg": 50, "over_s": 5400})
    assert req("prime", "--catheter-volume", "0.15") == ("prime", {"catheter_nl": 150_000})
    assert req("prime", "--catheter-volume", ".000001") == ("prime", {"catheter_nl": 1})
    assert req("prime", "--catheter-volume", "0") == ("prime", {"catheter_nl": 0})  # pump tubing only
    assert req("refill", "--removed", "0", "--added", "20", "--concentration", "500") == (
        "refill", {"removed_nl": 0, "added_nl": 20_000_000, "concentration": 500})
    assert req("refill", "--removed", "1.234567", "--added", "19.5000000", "--concentration", "2000")[1] == {
        "removed_nl": 1_234_567, "added_nl": 19_500_000, "concentration": 2000}


def test_clock():
    assert req("clock") == ("clock", {})
    assert req("clock", "--set", "2000-01-01T00:00:00Z") == ("clock", {"set_s": 0})
    assert req("clock", "--set", "2024-03-10T15:30:00+01:00")[1] == {"set_s": 763_396_200}
    assert req("clock", "--set", "2024-03-10T14:30:00.999Z")[1] == {"set_s": 763_396_200}  # whole seconds
    assert req("clock", "--utc-offset", "+05:45") == ("clock", {"utc_offset_min": 345})
    # argparse alone would take "-05:00" for an option: the CLI joins it to --utc-offset
    assert req("clock", "--utc-offset", "-05:00", "--set", "2024-03-10T14:30:00Z") == (
        "clock", {"set_s": 763_396_200, "utc_offset_min": -300})
    assert req("clock", "--utc-offset=-12:00")[1] == {"utc_offset_min": -720}
    assert req("clock", "--utc-offset", "+14:00")[1] == {"utc_offset_min": 840}


def test_yes_and_dry_run_are_accepted_on_programming_commands():
    for argv in (["program", "continuous", "--dose", "300"], ["program", "stop", "--reason", "x"],
                 ["bolus", "--dose", "50", "--over", "15m"], ["prime", "--catheter-volume", "0.1"],
                 ["refill", "--removed", "1", "--added", "2", "--concentration", "500"]):
        ns = parse(*argv, "--yes", "--dry-run")
        assert ns.yes and ns.dry_run


def test_override_is_an_arg_of_program_modes():
    assert req("program", "continuous", "--dose", "300", "--override", "  crisis, agreed with Dr X ")[1] == {
        "mode": "continuous", "dose_mcg": 300, "override": "crisis, agreed with Dr X"}
    assert req("program", "periodic", "--basal", "200", "--bolus", "50", "--every", "6h", "--over", "15m",
               "--override", "r")[1]["override"] == "r"
    assert req("program", "flex", "--step", "07:00=300", "--override", "x" * 200)[1]["override"] == "x" * 200
    assert "override" not in req("program", "continuous", "--dose", "300")[1]


def test_limits():
    assert req("limits") == ("limits", {})
    assert req("limits", "--origin", "Cerebral", "--titration", "5", "--low-reservoir", "2.5", "--bolus-cap", "80",
               "--initial-cap", "150", "--hard-max", "1500") == ("limits", {
                   "profile": "cerebral", "titration_pct": 5, "low_reservoir_nl": 2_500_000, "bolus_cap_mcg": 80,
                   "initial_cap_mcg": 150, "hard_max_mcg": 1500})
    assert req("limits", "--titration", "30")[1] == {"titration_pct": 30}  # the device knows the profile
    assert req("limits", "--low-reservoir", "1")[1] == {"low_reservoir_nl": 1_000_000}
    assert req("limits", "--low-reservoir", "5.000000")[1] == {"low_reservoir_nl": 5_000_000}
    assert req("limits", "--origin", "pediatric")[1] == {"profile": "pediatric"}


def test_ptm_and_patient_bolus():
    assert req("ptm") == ("ptm", {})
    assert req("ptm", "--disable") == ("ptm", {"enable": False})
    assert req("ptm", "--enable", "--dose", "25", "--over", "10m", "--max-per-day", "4", "--lockout", "3h") == (
        "ptm", {"enable": True, "dose_mcg": 25, "over_s": 600, "max_per_day": 4, "lockout_s": 10_800})
    assert req("ptm", "--enable", "--dose", "25", "--over", "3h", "--max-per-day", "1", "--lockout", "3h",
               "--override", " trial ")[1]["override"] == "trial"
    assert req("patient-bolus") == ("patient_bolus", {})


def test_describe_new_commands():
    assert requests.describe(*req("ptm", "--enable", "--dose", "25", "--over", "10m", "--max-per-day", "4",
                                  "--lockout", "3h")) == (
        "patient bolus (PTM): enable, 25 mcg over 10 min, at most 4 a day, lockout 3 h")
    assert requests.describe(*req("ptm", "--disable")) == "patient bolus (PTM): disable"
    assert requests.describe(*req("limits", "--origin", "spinal", "--titration", "20", "--low-reservoir", "2")) == (
        "limits: set origin spinal, titration 20 %, low reservoir 2.00 mL")
    assert requests.describe(*req("program", "continuous", "--dose", "300", "--override", "why")) == (
        "program continuous: 300 mcg/day (override: why)")


# -- refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,words", [
    # bare and sub-second durations, zero durations
    (["bolus", "--dose", "50", "--over", "15"], "--over '15' has no unit"),
    (["program", "periodic", "--basal", "200", "--bolus", "50", "--every", "6", "--over", "15m"],
     "--every '6' has no unit"),
    (["bolus", "--dose", "50", "--over", "250ms"], "--over must be whole seconds, got '250ms'"),
    (["program", "periodic", "--basal", "200", "--bolus", "50", "--every", "6h", "--over", "1s500ms"],
     "--over must be whole seconds, got '1s500ms'"),
    (["bolus", "--dose", "50", "--over", "0s"], "--over must be more than 0 seconds"),
    (["bolus", "--dose", "50", "--over", "fast"], "--over 'fast' is not a duration"),
    (["program", "periodic", "--basal", "200", "--bolus", "50", "--every", "1h", "--over", "1h"],
     r"--over \(1h\) must be shorter than --every \(1h\)"),
    (["program", "periodic", "--basal", "200", "--bolus", "50", "--every", "30m", "--over", "1h"],
     "must be shorter than --every"),
    # doses
    (["program", "continuous", "--dose", "12.5"], "--dose must be a whole number of mcg/day, got '12.5'"),
    (["program", "continuous", "--dose", "0"], "--dose must be more than 0 mcg/day"),
    (["program", "continuous", "--dose", "-5"], "--dose must be a whole number of mcg/day, got '-5'"),
    (["program", "continuous", "--dose", "1e3"], "--dose must be a whole number"),
    (["bolus", "--dose", "ten", "--over", "15m"], "--dose must be a whole number of mcg, got 'ten'"),
    (["program", "periodic", "--basal", "0", "--bolus", "50", "--every", "6h", "--over", "15m"],
     "--basal must be more than 0 mcg/day"),
    (["refill", "--removed", "1", "--added", "2", "--concentration", "500.5"],
     "--concentration must be a whole number of mcg/mL, got '500.5'"),
    # HH:MM
    (["program", "flex", "--step", "24:00=300"], "from 00:00 to 23:59, got '24:00'"),
    (["program", "flex", "--step", "7:05=300"], "from 00:00 to 23:59, got '7:05'"),
    (["program", "flex", "--step", "07:5=300"], "got '07:5'"),
    (["program", "flex", "--step", "12:60=300"], "got '12:60'"),
    (["program", "flex", "--step", "0700=300"], "got '0700'"),
    (["program", "periodic", "--basal", "200", "--bolus", "50", "--every", "6h", "--over", "15m", "--start", "7:00"],
     "--start must be a local time HH:MM from 00:00 to 23:59, got '7:00'"),
    # flex structure
    (["program", "flex", "--step", "07:00"], "--step must be HH:MM=MCG_PER_DAY"),
    (["program", "flex", "--step", "07:00=12.5"], "--step 07:00=12.5: the dose must be a whole number of mcg/day"),
    (["program", "flex", "--step", "07:00=0"], "the dose must be more than 0 mcg/day"),
    (["program", "flex", "--step", "07:00=300", "--step", "07:00=400"], "two flex steps start at 07:00 for every day"),
    (["program", "flex", "--day", "mon", "--step", "07:00=300"],
     "every day needs its steps: missing tue, wed, thu, fri, sat, sun"),
    (["program", "flex", "--day", "weekdays", "--step", "07:00=300"], "missing sat, sun"),
    (["program", "flex", "--day", "weekdays", "--step", "07:00=300", "--day", "mon,weekend", "--step", "08:00=1"],
     r"day mon is named twice \(--day weekdays and --day mon,weekend\)"),
    (["program", "flex", "--day", "mon,mon", "--step", "07:00=300"], "day mon is named twice in --day mon,mon"),
    (["program", "flex", "--day", "funday", "--step", "07:00=300"], "--day 'funday' is not a day"),
    (["program", "flex", "--step", "07:00=300", "--day", "all"], "--step 07:00=300 comes before any --day"),
    (["program", "flex", "--day", "weekdays", "--day", "weekend", "--step", "07:00=300"],
     "--day weekdays has no --step after it"),
    # volumes
    (["refill", "--removed", "1", "--added", "1.0000001", "--concentration", "500"],
     r"--added 1.0000001: volumes resolve to 1 nL \(6 decimals in mL\)"),
    (["prime", "--catheter-volume", "0.0000005"], "--catheter-volume 0.0000005: volumes resolve to 1 nL"),
    (["refill", "--removed", "-1", "--added", "2", "--concentration", "500"], "--removed must not be negative"),
    (["refill", "--removed", "nan", "--added", "2", "--concentration", "500"], "--removed must be a finite volume"),
    (["refill", "--removed", "1", "--added", "Infinity", "--concentration", "500"], "--added must be a finite volume"),
    (["refill", "--removed", "1", "--added", "0", "--concentration", "500"], "--added must be more than 0 mL"),
    (["refill", "--removed", "1", "--added", "1e3", "--concentration", "500"], "--added must be a volume in mL"),
    (["prime", "--catheter-volume", "1,5"], "--catheter-volume must be a volume in mL"),
    # clock
    (["clock", "--set", "2024-03-10T14:30:00"], "--set '2024-03-10T14:30:00' has no time zone: add Z"),
    (["clock", "--set", "2024-03-10"], "has no time zone"),
    (["clock", "--set", "yesterday"], "--set must be an ISO 8601 date and time"),
    (["clock", "--set", "1999-12-31T23:59:59Z"], "--set must be on or after 2000-01-01T00:00:00Z"),
    (["clock", "--utc-offset", "+15:00"], r"--utc-offset must be within -12:00..\+14:00, got '\+15:00'"),
    (["clock", "--utc-offset", "-12:30"], "must be within -12:00"),
    (["clock", "--utc-offset", "01:00"], r"--utc-offset must be \+HH:MM or -HH:MM"),
    (["clock", "--utc-offset", "+1"], r"must be \+HH:MM or -HH:MM"),
    (["clock", "--utc-offset", "+01:60"], r"must be \+HH:MM or -HH:MM"),
    # reasons
    (["program", "continuous", "--dose", "300", "--override", "  "],
     "--override needs a reason: 1..200 characters, logged with the change"),
    (["program", "continuous", "--dose", "300", "--override", "x" * 201],
     r"--override must be at most 200 characters \(the pump logs it\), got 201"),
    (["program", "stop", "--reason", "x" * 250], "--reason must be at most 200 characters .*, got 250"),
    # limits
    (["limits", "--titration", "40"],
     r"--titration must be 5..30 % \(spinal 10..30 %, cerebral and pediatric 5..15 %\), got '40'"),
    (["limits", "--origin", "cerebral", "--titration", "20"],
     r"--titration must be 5..15 % \(the cerebral profile's range\), got '20'"),
    (["limits", "--origin", "spinal", "--titration", "5"],
     r"--titration must be 10..30 % \(the spinal profile's range\), got '5'"),
    (["limits", "--titration", "12.5"], "--titration must be a whole number of %, got '12.5'"),
    (["limits", "--origin", "lumbar"], "--origin must be one of spinal, cerebral, pediatric, got 'lumbar'"),
    (["limits", "--low-reservoir", "0.5"],
     r"--low-reservoir must be 1.00..5.00 mL \(the low-reservoir alarm threshold's range\), got '0.5'"),
    (["limits", "--low-reservoir", "5.000001"], "--low-reservoir must be 1.00..5.00 mL"),
    (["limits", "--low-reservoir", "2.0000001"], "--low-reservoir 2.0000001: volumes resolve to 1 nL"),
    (["limits", "--low-reservoir", "two"], "--low-reservoir must be a volume in mL"),
    (["limits", "--bolus-cap", "0"], "--bolus-cap must be more than 0 mcg, got '0'"),
    (["limits", "--initial-cap", "-5"], "--initial-cap must be a whole number of mcg/day, got '-5'"),
    (["limits", "--hard-max", "1e3"], "--hard-max must be a whole number of mcg/day, got '1e3'"),
    # ptm
    (["ptm", "--enable", "--dose", "25", "--over", "10m", "--max-per-day", "4"],
     "ptm --enable needs --lockout"),
    (["ptm", "--enable"], "ptm --enable needs --dose, --over, --max-per-day, --lockout"),
    (["ptm", "--dose", "25"], "--dose needs --enable"),
    (["ptm", "--dose", "25", "--lockout", "3h"], "--dose, --lockout need --enable"),
    (["ptm", "--disable", "--max-per-day", "3"], "ptm --disable takes no --max-per-day"),
    (["ptm", "--disable", "--override", "x"], "--override applies to ptm --enable only"),
    (["ptm", "--override", "x"], "--override applies to ptm --enable only"),
    (["ptm", "--enable", "--dose", "25", "--over", "10", "--max-per-day", "4", "--lockout", "3h"],
     "--over '10' has no unit"),
    (["ptm", "--enable", "--dose", "2.5", "--over", "10m", "--max-per-day", "4", "--lockout", "3h"],
     "--dose must be a whole number of mcg, got '2.5'"),
    (["ptm", "--enable", "--dose", "25", "--over", "10m", "--max-per-day", "0", "--lockout", "3h"],
     "--max-per-day must be more than 0 patient boluses a day, got '0'"),
    (["ptm", "--enable", "--dose", "25", "--over", "4h", "--max-per-day", "4", "--lockout", "3h"],
     r"--over \(4h\) must not be longer than --lockout \(3h\)"),
    (["ptm", "--enable", "--dose", "25", "--over", "10m", "--max-per-day", "4", "--lockout", "0s"],
     "--lockout must be more than 0 seconds"),
])
def test_refusals_name_field_problem_and_limit(argv, words):
    import re
    msg = refused(*argv)
    assert re.search(words, msg), msg
    assert "\n" not in msg


def test_enable_and_disable_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as e:
        parse("ptm", "--enable", "--disable")
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_fourteen_steps_refused():
    steps = [x for h in range(14) for x in ("--step", f"{h:02d}:00=100")]
    assert refused("program", "flex", *steps) == "at most 13 flex steps per day, got 14 for every day"
    assert refused("program", "flex", "--day", "mon", *steps, "--day", "tue,wed,thu,fri,sat,sun",
                   "--step", "07:00=1") == "at most 13 flex steps per day, got 14 for mon"


def test_stop_needs_a_reason(capsys):
    with pytest.raises(SystemExit) as e:
        parse("program", "stop")
    assert e.value.code == 2 and "--reason" in capsys.readouterr().err
    for reason in (None, "", "   "):
        ns = argparse.Namespace(command="program", program_mode="stop", reason=reason)
        with pytest.raises(UsageError, match="program stop needs --reason"):
            requests.build(ns)


def test_flex_without_steps_and_missing_fields():
    ns = argparse.Namespace(command="program", program_mode="flex", flex_plan=None)
    with pytest.raises(UsageError, match="needs at least one --step"):
        requests.build(ns)
    ns = argparse.Namespace(command="bolus", dose=None, over="15m")
    with pytest.raises(UsageError, match="--dose is required"):
        requests.build(ns)


# -- properties -------------------------------------------------------------------------------

@given(st.integers(min_value=0, max_value=24 * 60 - 1))
def test_minutes_round_trip(m):
    assert requests.minute_of_day(clock_text(m), "--start") == m


@given(st.integers(0, 23), st.integers(0, 59))
def test_hhmm_round_trip(h, m):
    text = f"{h:02d}:{m:02d}"
    assert clock_text(requests.minute_of_day(text, "--start")) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_nl_round_trip(nl):
    assert requests.volume_nl(ml_text(nl), "--removed") == nl


@given(st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False, allow_infinity=False))
def test_ml_round_trip(ml):
    text = f"{ml:f}"
    nl = requests.volume_nl(text, "--added")
    assert Decimal(ml_text(nl)) == ml


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=7, max_value=12))
def test_more_than_6_decimals_refused_unless_exact(n, places):
    text = f"{n // 10**places}.{n % 10**places:0{places}d}"
    if n % 10 ** (places - 6):
        with pytest.raises(UsageError, match="resolve to 1 nL"):
            requests.volume_nl(text, "--added")
    else:
        assert requests.volume_nl(text, "--added") * 10 ** (places - 6) == n


@given(st.lists(st.tuples(st.integers(0, 1439), st.integers(1, 2000)), min_size=1, max_size=13,
                unique_by=lambda s: s[0]))
def test_flex_steps_any_order(steps):
    argv = [x for start, dose in steps for x in ("--step", f"{clock_text(start)}={dose}")]
    _, a = req("program", "flex", *argv)
    assert a["days"] == {"all": sorted([list(s) for s in steps])}


# -- describe, dry run, CLI ---------------------------------------------------------------------

def test_describe():
    assert requests.describe(*req("program", "periodic", "--basal", "200", "--bolus", "50", "--every", "6h",
                                  "--over", "15m")) == ("program periodic: basal 200 mcg/day, bolus 50 mcg every "
                                                        "6 h over 15 min, first bolus now")
    assert requests.describe(*req("refill", "--removed", "1", "--added", "20", "--concentration", "500")) == (
        "refill: removed 1.00 mL, added 20.00 mL at 500 mcg/mL")
    assert requests.describe(*req("clock")) == "clock: read"


def test_dry_run_asks_the_pump_for_its_review(capsys):
    """--dry-run shows the device's review (tests/test_cli_review.py), so it opens the port."""
    rc = cli.main(["--port", "/dev/does-not-exist", "--json", "program", "continuous", "--dose", "300", "--dry-run"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["ok"] is False and "cannot open serial port /dev/does-not-exist" in out["error"]
    # bad input is still refused before any port is opened
    rc = cli.main(["--port", "/dev/does-not-exist", "bolus", "--dose", "50", "--over", "15", "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 1 and "has no unit" in err and "serial port" not in err


def test_bad_input_is_one_line_before_any_port(capsys):
    rc = cli.main(["--port", "/dev/does-not-exist", "bolus", "--dose", "50", "--over", "15"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "has no unit" in err
    rc = cli.main(["--port", "/dev/does-not-exist", "--json", "clock", "--utc-offset", "+15:00"])
    assert rc == 1 and "within -12:00..+14:00" in json.loads(capsys.readouterr().out)["error"]
    for argv in (["limits", "--low-reservoir", "9"], ["ptm", "--enable", "--dose", "25"],
                 ["program", "continuous", "--dose", "300", "--override", ""]):
        rc = cli.main(["--port", "/dev/does-not-exist", *argv])
        err = capsys.readouterr().err
        assert rc == 1 and err.count("\n") == 1 and "serial port" not in err, err


def test_flex_help_documents_days_and_dry_run(capsys):
    with pytest.raises(SystemExit):
        cli.main(["program", "flex", "--help"])
    out = capsys.readouterr().out
    assert "--day DAYS" in out and "weekdays" in out and "--dry-run" in out and "not a medical device" in out


# -- a scripted pump for the client and the rendering of answers -------------------------------

REVIEW = {"review": True, "token": "00112233445566aa", "expires_s": 300, "summary": "s",
          "current": {}, "new": {}, "reference": {"min_mcg": None, "max_mcg": None},
          "change_tenths_pct": None, "warnings": [], "overrides": []}
ANSWERS = {
    "bolus": {"dose_mcg": 50, "volume_nl": 100_000, "ends_s": 3600, "over_s": 900},
    "refill": {"reservoir_nl": 20_000_000, "expected_removed_nl": 1_500_000, "warnings": ["discrepancy"]},
    "program": {"daily_dose_mcg": 300, "rate_nl_per_day": 600_000, "volume_nl": 250,
                "starts_s": 86_400, "over_s": 900, "start_min": 420, "warnings": []},
}


class ScriptedTwoPhasePump(FakePump):
    """Programming requests answer with a review; the commit answers ANSWERS[what was prepared]."""

    def __init__(self, keys: dict):
        self.prepared: str | None = None
        super().__init__(self._answer, keys=keys)

    def _answer(self, cmd: str, args: dict) -> dict:
        if cmd == "commit":
            return {**ANSWERS.get(self.prepared or "", {}), "committed": self.prepared}
        if cmd == "clock":
            return {"clock": 763_396_200, "utc_offset_min": 60,
                    "schedule_shift": ["07:00 local step now starts at 06:00 UTC (was 07:00)"]}
        self.prepared = cmd
        return {**REVIEW, "cmd": cmd}


@pytest.fixture
def pump(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    p = ScriptedTwoPhasePump(write_host_keys(tmp_path / "config"))
    yield p
    p.close()


def test_client_methods_send_device_units(pump):
    token = {"cmd": "commit", "args": {"token": REVIEW["token"]}, "signed": True}
    with PumpClient(pump.port, timeout=1) as c:
        assert c.program(mode="continuous", dose_mcg=300)["committed"] == "program"
        c.bolus(50, 900)
        c.prime(150_000)
        c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
        assert c.clock()["utc_offset_min"] == 60
        c.clock(set_s=5, utc_offset_min=None)
        c.clock(utc_offset_min=-300)
    assert pump.requests == [
        {"cmd": "program", "args": {"mode": "continuous", "dose_mcg": 300}, "signed": True}, token,
        {"cmd": "bolus", "args": {"dose_mcg": 50, "over_s": 900}, "signed": True}, token,
        {"cmd": "prime", "args": {"catheter_nl": 150_000}, "signed": True}, token,
        {"cmd": "refill", "args": {"removed_nl": 0, "added_nl": 20_000_000, "concentration": 500}, "signed": True},
        token,
        {"cmd": "clock", "args": {}},
        {"cmd": "clock", "args": {"set_s": 5}, "signed": True},
        {"cmd": "clock", "args": {"utc_offset_min": -300}, "signed": True},
    ]


def test_largest_flex_schedule_fits_a_frame():
    """13 steps a day, 7 different days, 4-digit doses: the spec's worst case fits the link."""
    big = {d: [[1400 + i, 1000 + i] for i in range(13)] for d in ALL7}
    body = json.dumps({"cmd": "program", "args": {"mode": "flex", "days": big}}, separators=(",", ":"))
    assert len(body) + 4 <= framing.MAX_PAYLOAD


def test_request_over_the_frame_limit_is_refused_before_sending(pump):
    with PumpClient(pump.port, timeout=1) as c:
        with pytest.raises(PumpError, match="over the link's 2048-byte frame limit"):
            c.program(mode="stop", reason="x" * 3000)
    assert pump.requests == []


def test_cli_renders_the_committed_answer_in_user_units(pump, capsys):
    assert cli.main(["--port", pump.port, "program", "continuous", "--dose", "300", "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("program continuous: 300 mcg/day\nReview: s\n")
    after = out[out.index("applied: program\n"):]
    for line in ("  volume: 0.00025 mL", "  rate now       0.600 mL/day", "  starts: 2000-01-02T00:00:00Z",
                 "  over: 15 min", "  start: 07:00", "  warnings       none", "  daily dose     300 mcg/day"):
        assert line + "\n" in after, out
    assert cli.main(["--port", pump.port, "--json", "bolus", "--dose", "50", "--over", "15m", "--yes"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {k: out[k] for k in ("dose_mcg", "volume_ml", "ends", "over_s", "committed", "applied")} == {
        "dose_mcg": 50, "volume_ml": 0.1, "ends": "2000-01-01T01:00:00Z", "over_s": 900, "committed": "bolus",
        "applied": True}
    assert cli.main(["--port", pump.port, "--json", "refill", "--removed", "1", "--added", "20",
                     "--concentration", "500", "--yes"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reservoir_ml"] == 20.0 and out["expected_removed_ml"] == 1.5 and out["warnings"] == ["discrepancy"]
    assert pump.requests[-2] == {"cmd": "refill", "signed": True, "args": {
        "removed_nl": 1_000_000, "added_nl": 20_000_000, "concentration": 500}}


def test_cli_clock(pump, capsys):
    assert cli.main(["--port", pump.port, "clock", "--utc-offset", "-05:00", "--yes"]) == 0
    out = capsys.readouterr().out
    assert pump.requests[-2] == {"cmd": "clock", "args": {}}  # read for the review, then set
    assert pump.requests[-1] == {"cmd": "clock", "args": {"utc_offset_min": -300}, "signed": True}
    assert "clock          2024-03-10 15:30 local time (UTC+01:00)" in out
    assert "07:00 local step now starts at 06:00 UTC" in out
    assert cli.main(["--port", pump.port, "--json", "clock"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "clock": "2024-03-10T14:30:00Z", "utc_offset": "+01:00", "utc_offset_min": 60,
        "schedule_shift": ["07:00 local step now starts at 06:00 UTC (was 07:00)"]}
    assert pump.requests[-1] == {"cmd": "clock", "args": {}}


# -- status with the optional therapy block -----------------------------------------------------

BASE_STATUS = {
    "state": "running", "mode": "flex", "daily_dose_mcg": 400, "rate_nl_per_day": 800_000,
    "concentration_mcg_per_ml": 500, "reservoir_nl": 12_345_678, "reservoir_capacity_nl": 20_000_000,
    "alarms": [], "alarm_date": None, "refill_date": None, "clock": 0, "utc_offset_min": 0,
    "firmware_version": "0.2.0", "serial": "ITB-TEST",
}


def test_status_without_therapy_is_unchanged():
    s = render.status_json(BASE_STATUS, "/dev/x")
    assert "therapy" not in s
    text = render.status_text(s, "fake")
    assert "flex step" not in text and "  reservoir      12.35 mL of 20 mL" in text


def test_status_with_therapy():
    raw = {**BASE_STATUS, "therapy": {
        "flex_step": {"start_min": 420, "dose_mcg": 300, "next_start_min": 1320},
        "next_bolus_s": 3600,
        "bolus": {"dose_mcg": 50, "volume_nl": 100_000, "delivered_nl": 25_000, "ends_s": 7200},
        "bridge": {"dead_volume_nl": 290_000, "pushed_nl": 50_000, "old_concentration": 2000},
        "priming": {"volume_nl": 290_000, "pushed_nl": 1_000},
        "strokes": 1234, "delivered_nl": 308_500, "primed_nl": 290_000,
    }}
    s = render.status_json(raw, "/dev/x")
    assert s["therapy"] == {
        "flex_step": {"start_min": 420, "dose_mcg": 300, "next_start_min": 1320},
        "next_bolus": "2000-01-01T01:00:00Z",
        "bolus": {"dose_mcg": 50, "volume_ml": 0.1, "delivered_ml": 0.025, "ends": "2000-01-01T02:00:00Z"},
        "bridge": {"dead_volume_ml": 0.29, "pushed_ml": 0.05, "old_concentration": 2000},
        "priming": {"volume_ml": 0.29, "pushed_ml": 0.001},
        "strokes": 1234, "delivered_ml": 0.3085, "primed_ml": 0.29,
    }
    text = render.status_text(s, "fake")
    for line in ("  flex step      300 mcg/day since 07:00, next step at 22:00",
                 "  next bolus     2000-01-01 01:00",
                 "  bolus          50 mcg (0.10 mL): 0.03 mL delivered, ends 2000-01-01 02:00",
                 "  bridge         0.05 of 0.29 mL pushed at the old concentration (2000 mcg/mL)",
                 "  priming        0.00 of 0.29 mL pushed",
                 "  strokes        1234",
                 "  delivered      0.31 mL",
                 "  primed         0.29 mL"):
        assert line in text.splitlines(), text


def test_status_flex_step_next_start_as_timestamp():
    raw = {**BASE_STATUS, "therapy": {"flex_step": {"start_min": 1320, "dose_mcg": 600, "next_start_s": 32_400}}}
    s = render.status_json(raw, "/dev/x")
    assert s["therapy"]["flex_step"]["next_start"] == "2000-01-01T09:00:00Z"
    assert "  flex step      600 mcg/day since 22:00, next step at 09:00" in render.status_text(s, "f")


def test_status_with_partial_therapy():
    s = render.status_json({**BASE_STATUS, "therapy": {"bolus": {"dose_mcg": 50}, "strokes": 0}}, "/dev/x")
    text = render.status_text(s, "fake")
    assert "  bolus          50 mcg (- mL): - mL delivered, ends -" in text and "  strokes        0" in text
