"""Two-phase programming from the CLI (spec §4, §9): the review, the confirmation, refusals.

The first part runs `itbpump` against a scripted pump (tests/fake_pump.py: the real link and the
real challenge-response, answers from a script), so every rendering and every answer to the
prompt is checked without the firmware. The last part runs the real firmware on the virtual
Pico: what the pump does when the CLI applies, declines or only reviews a change.
"""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from fake_pump import FakePump, Refuse, write_host_keys

from host_tools import cli, render

ITBPUMP = str(Path(sys.executable).parent / "itbpump")
TOKEN = "0123456789abcdef"
DAY = 86_400

REVIEW = {
    "review": True, "cmd": "program", "token": TOKEN, "expires_s": 300, "serial": "ITB-0000BEEF",
    "summary": "continuous 300 mcg/day",
    "current": {"mode": "continuous", "daily_dose_mcg": 240, "rate_nl_per_day": 480_000,
                "alarm_date": 30 * DAY, "refill_date": 34 * DAY + 3600},
    "new": {"mode": "continuous", "daily_dose_mcg": 300, "rate_nl_per_day": 600_000,
            "alarm_date": 25 * DAY, "refill_date": 28 * DAY + 1},
    "reference": {"min_mcg": 240, "max_mcg": 250},
    "change_tenths_pct": 250,
    "warnings": ["increase over 20 % at 500 mcg/day or more"],
    "overrides": [{"limit": "ceiling", "text": "1200 mcg/day is over the 1000 mcg/day ceiling"}],
}
COMMITTED = {"state": "running", "mode": "continuous", "daily_dose_mcg": 300, "rate_nl_per_day": 600_000,
             "concentration_mcg_per_ml": 500, "committed": "program", "warnings": [], "overrides": []}


class TtyIn(io.StringIO):
    """stdin as a terminal where the user types `text`; records whether it was read."""

    def isatty(self) -> bool:
        return True


class NoInput(io.StringIO):
    """stdin that must not be read: --yes, --json and --dry-run never ask."""

    def __init__(self, tty: bool = True):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty

    def readline(self, *a):  # type: ignore[override]
        raise AssertionError("the CLI asked for confirmation")

    read = readline


@pytest.fixture
def host_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return write_host_keys(tmp_path / "config")


def scripted(review: dict = REVIEW, committed: dict = COMMITTED, **more) -> "callable":
    def answer(cmd: str, args: dict) -> dict:
        if cmd == "commit":
            if isinstance(committed, Exception):
                raise committed
            return committed
        if cmd in more:
            value = more[cmd]
            if isinstance(value, Exception):
                raise value
            return value(args) if callable(value) else value
        return {**review, "cmd": cmd}
    return answer


@pytest.fixture
def pump(host_keys):
    p = FakePump(scripted(), keys=host_keys)
    yield p
    p.close()


def itb(pump: FakePump, *argv: str) -> int:
    return cli.main(["--port", pump.port, "--timeout", "1", *argv])


def field(text: str, label: str) -> str:
    """What a review line labelled `label` says (after the label column)."""
    line = next(x for x in text.splitlines() if x.startswith(f"  {label} "))
    return line[len(label) + 2:].strip()


# -- rendering ----------------------------------------------------------------------------------

def test_review_text_side_by_side():
    text = render.review_text(REVIEW)
    lines = text.splitlines()
    assert lines[0] == "Review: continuous 300 mcg/day"
    assert lines[1].split() == ["current", "new"]
    rows = {line.split("  ")[1].strip(): line for line in lines[2:7]}
    assert rows["daily dose"].split()[2:] == ["240", "mcg/day", "300", "mcg/day"]
    assert rows["rate"].split()[1:] == ["0.480", "mL/day", "0.600", "mL/day"]
    assert rows["alarm date"].split()[2:] == ["2000-01-31", "00:00", "2000-01-26", "00:00"]
    assert rows["refill date"].split()[2:] == ["2000-02-04", "01:00", "2000-01-29", "00:00"]
    # the two columns line up under their headings
    assert lines[1].index("current") == lines[3].index("240") == lines[4].index("0.480")
    assert lines[1].index("new") == lines[3].index("300") == lines[4].index("0.600")
    assert field(text, "change") == "+25.0 % against 240 mcg/day, the lowest daily dose in the last 24 h"
    assert field(text, "warnings") == "increase over 20 % at 500 mcg/day or more"
    assert field(text, "overrides") == "ceiling: 1200 mcg/day is over the 1000 mcg/day ceiling"
    assert field(text, "pump") == "ITB-0000BEEF"
    assert "(dates in the pump's local time, UTC+00:00; this review holds for 5 min of pump time)" in text


def test_review_text_new_pump_and_extra_keys():
    rv = {**REVIEW, "reference": {"min_mcg": None, "max_mcg": None}, "change_tenths_pct": None,
          "warnings": [], "overrides": [],
          "current": {"mode": "stopped", "daily_dose_mcg": 0, "rate_nl_per_day": 0, "alarm_date": None,
                      "refill_date": None},
          "new": {"mode": "stopped", "daily_dose_mcg": 0, "rate_nl_per_day": 0, "alarm_date": None,
                  "refill_date": None, "reservoir_nl": 20_000_000, "concentration_mcg_per_ml": 500}}
    text = render.review_text(rv)
    assert field(text, "change") == "no dose in the last 24 h"
    assert field(text, "warnings") == "none" and field(text, "overrides") == "none"
    assert field(text, "reservoir").split() == ["-", "20.00", "mL"]
    assert field(text, "concentration").split() == ["-", "500", "mcg/mL"]
    assert field(text, "alarm date").split() == ["-", "-"]


@pytest.mark.parametrize("tenths,ref,text", [
    (250, 240, "+25.0 %"), (-200, 500, "-20.0 %"), (0, 300, "0.0 %"), (5, 100, "+0.5 %"), (-1234, 9, "-123.4 %"),
    (None, None, "no dose in the last 24 h"), (None, 300, "-"),
])
def test_change_pct_text(tenths, ref, text):
    assert render.change_pct_text(tenths, ref) == text


@pytest.mark.parametrize("s,text", [(4320, "1h 12m"), (4321, "1h 13m"), (45, "45s"), (0, "0s"), (60, "1m"),
                                    (3600, "1h"), (90_000, "1d 1h"), (86_460, "1d 1m")])
def test_wait_text_never_too_early(s, text):
    assert render.wait_text(s) == text


def test_review_json_user_units():
    j = render.review_json(REVIEW)
    assert j["current"] == {"mode": "continuous", "daily_dose_mcg": 240, "rate_ml_per_day": 0.48,
                            "alarm_date": "2000-01-31T00:00:00Z", "refill_date": "2000-02-04T01:00:00Z"}
    assert j["new"]["rate_ml_per_day"] == 0.6 and j["new"]["refill_date"] == "2000-01-29T00:00:01Z"
    assert j["change_pct"] == 25.0 and j["change_tenths_pct"] == 250
    assert j["serial"] == "ITB-0000BEEF"
    assert j["token"] == TOKEN and j["expires_s"] == 300 and j["reference"] == {"min_mcg": 240, "max_mcg": 250}
    assert j["overrides"] == REVIEW["overrides"] and j["warnings"] == REVIEW["warnings"]


def test_committed_text():
    text = render.committed_text({**COMMITTED, "committed": "program", "reservoir_nl": 19_000_000,
                                  "overrides": [{"limit": "initial_cap", "text": "t"}, {"limit": "ceiling", "text": "u"}],
                                  "warnings": ["w1"]})
    assert text.splitlines() == [
        "applied: program",
        "  state          running",
        "  mode           continuous",
        "  daily dose     300 mcg/day",
        "  rate now       0.600 mL/day",
        "  concentration  500 mcg/mL",
        "  overrides      initial_cap (logged with the reason)",
        "                 ceiling (logged with the reason)",
        "  warnings       w1",
        "  reservoir: 19.00 mL",
    ]


# -- confirm, decline, --yes, --dry-run, --json -------------------------------------------------

@pytest.mark.parametrize("typed", ["y\n", "yes\n", " Y \n", "YES\n"])
def test_yes_at_the_prompt_commits_the_reviewed_token(pump, monkeypatch, capsys, typed):
    stdin = TtyIn(typed)
    monkeypatch.setattr(sys, "stdin", stdin)
    assert itb(pump, "program", "continuous", "--dose", "300") == 0
    out = capsys.readouterr().out
    assert pump.requests == [
        {"cmd": "program", "args": {"mode": "continuous", "dose_mcg": 300}, "signed": True},
        {"cmd": "commit", "args": {"token": TOKEN}, "signed": True},
    ]
    assert stdin.tell() == len(typed)  # the answer was read
    review_at, prompt_at, applied_at = (out.index("Review: continuous 300 mcg/day"),
                                        out.index("Apply this change? [y/N] "), out.index("applied: program\n"))
    assert review_at < prompt_at < applied_at
    assert "  daily dose     300 mcg/day\n  rate now       0.600 mL/day\n" in out[applied_at:]
    assert "not applied" not in out


@pytest.mark.parametrize("typed", ["n\n", "\n", "no\n", "yess\n", "apply\n", ""])  # "" = end of input
def test_anything_but_yes_declines_and_commits_nothing(pump, monkeypatch, capsys, typed):
    monkeypatch.setattr(sys, "stdin", TtyIn(typed))
    assert itb(pump, "program", "continuous", "--dose", "300") == 0
    out = capsys.readouterr().out
    assert pump.cmds() == ["program"]
    assert "Review: continuous 300 mcg/day" in out and "Apply this change? [y/N] " in out
    assert out.rstrip().endswith("not applied: the pump keeps its current therapy")


def test_no_terminal_means_no(pump, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", NoInput(tty=False))
    assert itb(pump, "bolus", "--dose", "50", "--over", "15m") == 0
    out = capsys.readouterr().out
    assert pump.cmds() == ["bolus"]
    assert "no terminal to answer on (use --yes in scripts)" in out
    assert out.rstrip().endswith("not applied: the pump keeps its current therapy")


def test_yes_flag_commits_without_asking(pump, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", NoInput())
    assert itb(pump, "refill", "--removed", "1", "--added", "20", "--concentration", "500", "--yes") == 0
    out = capsys.readouterr().out
    assert pump.requests == [
        {"cmd": "refill", "args": {"removed_nl": 1_000_000, "added_nl": 20_000_000, "concentration": 500},
         "signed": True},
        {"cmd": "commit", "args": {"token": TOKEN}, "signed": True},
    ]
    assert "Apply this change?" not in out
    assert out.index("Review: ") < out.index("applied: program\n")


@pytest.mark.parametrize("extra", [[], ["--yes"]])
def test_dry_run_reviews_and_never_commits(pump, monkeypatch, capsys, extra):
    monkeypatch.setattr(sys, "stdin", NoInput())
    assert itb(pump, "prime", "--catheter-volume", "0.25", "--dry-run", *extra) == 0
    out = capsys.readouterr().out
    assert pump.requests == [{"cmd": "prime", "args": {"catheter_nl": 250_000}, "signed": True}]
    assert "Review: " in out and "+25.0 %" in out
    assert out.rstrip().endswith("dry run: not applied: the pump keeps its current therapy")


@pytest.mark.parametrize("extra", [[], ["--dry-run"], ["--dry-run", "--yes"]])
def test_json_without_yes_prints_the_review_and_commits_nothing(pump, monkeypatch, capsys, extra):
    monkeypatch.setattr(sys, "stdin", NoInput())
    assert itb(pump, "--json", "program", "stop", "--reason", "infection", *extra) == 0
    out = json.loads(capsys.readouterr().out)  # stdout is one JSON document, no prompt
    assert pump.cmds() == ["program"]
    assert pump.requests[0]["args"] == {"mode": "stop", "reason": "infection"}
    assert out["applied"] is False and out["dry_run"] is bool(extra)
    assert out["review"] == render.review_json({**REVIEW, "cmd": "program"})


def test_json_with_yes_commits_and_answers_with_the_review(pump, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", NoInput())
    assert itb(pump, "--json", "program", "continuous", "--dose", "300", "--yes") == 0
    out = json.loads(capsys.readouterr().out)
    assert pump.cmds() == ["program", "commit"]
    assert out["applied"] is True and out["committed"] == "program"
    assert out["daily_dose_mcg"] == 300 and out["rate_ml_per_day"] == 0.6
    assert out["review"]["token"] == TOKEN and out["review"]["change_pct"] == 25.0


def test_override_is_sent_and_shown(pump, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", NoInput())
    assert itb(pump, "program", "flex", "--step", "07:00=300", "--override", " spasticity crisis ", "--dry-run") == 0
    out = capsys.readouterr().out
    assert pump.requests[0]["args"] == {"mode": "flex", "days": {"all": [[420, 300]]},
                                        "override": "spasticity crisis"}
    assert "(override: spasticity crisis)" in out
    assert field(out, "overrides") == "ceiling: 1200 mcg/day is over the 1000 mcg/day ceiling"


# -- refusals -----------------------------------------------------------------------------------

TITRATION = {"code": 11, "error": "limit", "limit": "initial_cap", "override": True,
             "text": "300 mcg/day is over the 200 mcg/day initial-dose cap (no dose in the last 24 h)"}


def test_limit_refusal_with_override_hint(host_keys, capsys):
    p = FakePump(scripted(program=Refuse(TITRATION)), keys=host_keys)
    try:
        assert itb(p, "program", "continuous", "--dose", "300", "--yes") == 1
        err = capsys.readouterr().err
        assert err == ("itbpump: the pump refused: 300 mcg/day is over the 200 mcg/day initial-dose cap (no dose "
                       "in the last 24 h); rerun with --override \"REASON\" to proceed past the initial-dose cap\n")
        assert itb(p, "--json", "program", "continuous", "--dose", "300") == 1
        out = json.loads(capsys.readouterr().out)
        assert out["ok"] is False and out["limit"] == "initial_cap" and out["override"] is True
        assert out["code"] == 11 and out["name"] == "limit" and TITRATION["text"] in out["error"]
        assert "initial-dose cap" in out["error"] and "--override" in out["hint"]
    finally:
        p.close()
    assert p.cmds() == ["program", "program"]  # never a commit


def test_limit_refusal_without_override_has_no_hint(host_keys, capsys):
    body = {"code": 11, "error": "limit", "limit": "bolus_cap", "override": False,
            "text": "a 150 mcg bolus is over the 100 mcg bolus cap"}
    p = FakePump(scripted(bolus=Refuse(body)), keys=host_keys)
    try:
        assert itb(p, "bolus", "--dose", "150", "--over", "15m", "--yes") == 1
    finally:
        p.close()
    err = capsys.readouterr().err
    assert err == "itbpump: the pump refused: a 150 mcg bolus is over the 100 mcg bolus cap\n"


def test_commit_refused_is_one_line(host_keys, monkeypatch, capsys):
    expired = Refuse({"code": 9, "error": "not_allowed",
                      "text": "the prepared change expired (5 min after its review): nothing applied"})
    p = FakePump(scripted(committed=expired), keys=host_keys)
    monkeypatch.setattr(sys, "stdin", TtyIn("y\n"))
    try:
        assert itb(p, "program", "continuous", "--dose", "300") == 1
    finally:
        p.close()
    captured = capsys.readouterr()
    assert p.cmds() == ["program", "commit"]
    assert captured.err == ("itbpump: the pump refused: the prepared change expired (5 min after its review): "
                            "nothing applied\n")
    assert "applied: program" not in captured.out


def test_missing_key_is_one_line_naming_role_serial_and_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    write_host_keys(tmp_path / "config", roles=("patient",))  # no clinician key for this pump
    p = FakePump(scripted(), keys={})
    try:
        assert itb(p, "program", "continuous", "--dose", "300", "--yes") == 1
    finally:
        p.close()
    err = capsys.readouterr().err
    key_file = tmp_path / "config" / "itbpump" / "keys.json"
    assert err.count("\n") == 1 and err.startswith("itbpump: no clinician key for pump ITB-7E570001 in ")
    assert str(key_file) in err
    assert p.requests == []


def test_stop_needs_its_reason_and_takes_no_override(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--port", "/dev/does-not-exist", "program", "stop", "--reason", "x", "--override", "y"])
    assert e.value.code == 2 and "--override" in capsys.readouterr().err


def test_help_tells_the_truth_about_two_phase(capsys):
    with pytest.raises(SystemExit):
        cli.main(["program", "continuous", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "will be two-phase" not in out and "Until the firmware has it" not in out
    for words in ('"Apply this change? [y/N]": only y or yes applies it', "--dry-run show the pump's review and "
                  "apply nothing", "--json never asks", "Exit code: 0 when applied, declined, or shown by --dry-run",
                  "--override REASON"):
        assert words in out, words


# -- ptm, patient-bolus, limits ------------------------------------------------------------------

PTM_ON = {"enabled": True, "dose_mcg": 25, "over_s": 600, "max_per_day": 4, "lockout_s": 10_800,
          "used_24h": 1, "next_allowed_s": DAY + 7200}
LIMITS = {"profile": "spinal", "titration_pct": 30, "titration_range": [10, 30], "initial_cap_mcg": 200,
          "ceiling_mcg": 1000, "hard_max_mcg": 2000, "bolus_cap_mcg": 100, "low_reservoir_nl": 2_000_000,
          "decrease_pct": 20, "high_dose_mcg": 500, "reference": {"min_mcg": None, "max_mcg": None}}


def test_ptm_enable_warns_before_the_review(pump, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", TtyIn("n\n"))
    assert itb(pump, "ptm", "--enable", "--dose", "25", "--over", "10m", "--max-per-day", "4",
               "--lockout", "3h", "--override", "trial agreed with the patient") == 0
    out = capsys.readouterr().out
    assert pump.requests == [{"cmd": "ptm", "signed": True, "args": {
        "enable": True, "dose_mcg": 25, "over_s": 600, "max_per_day": 4, "lockout_s": 10_800,
        "override": "trial agreed with the patient"}}]
    assert out.startswith("warning: patient boluses are not indicated for baclofen on some pumps\n")
    assert out.index("warning: patient boluses") < out.index("Review: ")
    assert out.rstrip().endswith("not applied: the pump keeps its current therapy")


def test_ptm_enable_json_keeps_stdout_one_document(pump, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", NoInput())
    assert itb(pump, "--json", "ptm", "--enable", "--dose", "25", "--over", "10m", "--max-per-day", "4",
               "--lockout", "3h") == 0
    captured = capsys.readouterr()
    assert captured.err == "warning: patient boluses are not indicated for baclofen on some pumps\n"
    assert json.loads(captured.out)["applied"] is False
    assert pump.cmds() == ["ptm"]


def test_ptm_disable_and_status(host_keys, monkeypatch, capsys):
    p = FakePump(scripted(ptm=lambda a: {**REVIEW, "cmd": "ptm"} if a else PTM_ON), keys=host_keys)
    monkeypatch.setattr(sys, "stdin", NoInput())
    try:
        assert itb(p, "ptm", "--disable", "--yes") == 0
        out = capsys.readouterr().out
        assert "warning: patient boluses" not in out and "applied: program" in out
        assert itb(p, "ptm") == 0
        out = capsys.readouterr().out
        assert itb(p, "--json", "ptm") == 0
        j = json.loads(capsys.readouterr().out)
    finally:
        p.close()
    assert p.requests[:2] == [{"cmd": "ptm", "args": {"enable": False}, "signed": True},
                              {"cmd": "commit", "args": {"token": TOKEN}, "signed": True}]
    assert p.requests[2] == {"cmd": "ptm", "args": {}}  # a read is not signed
    for line in ("patient bolus (PTM): enabled", "  dose           25 mcg over 10 min", "  max per day    4",
                 "  lockout        3 h", "  used (24 h)    1", "  next allowed   2000-01-02 02:00"):
        assert line in out.splitlines(), out
    assert j["next_allowed"] == "2000-01-02T02:00:00Z" and j["lockout_s"] == 10_800


@pytest.mark.parametrize("limit,retry,words", [
    ("ptm_lockout", 4320, "locked out: next patient bolus allowed in 1h 12m"),
    ("ptm_daily_max", 50_000, "daily maximum reached: next patient bolus allowed in 13h 54m"),
])
def test_patient_bolus_refusal_says_when(host_keys, capsys, limit, retry, words):
    body = {"code": 11, "error": "limit", "limit": limit, "override": False, "retry_in_s": retry,
            "text": "the device's reason"}
    p = FakePump(scripted(patient_bolus=Refuse(body)), keys=host_keys)
    try:
        assert itb(p, "patient-bolus") == 1
        err = capsys.readouterr().err
        assert itb(p, "--json", "patient-bolus") == 1
        j = json.loads(capsys.readouterr().out)
    finally:
        p.close()
    assert err == f"itbpump: {words}\n"
    assert j["retry_in_s"] == retry and j["limit"] == limit and words in j["error"]
    assert p.requests[0]["signed"] is True


def test_patient_bolus_given(host_keys, capsys):
    answer = {**COMMITTED, "bolus": {"dose_mcg": 25, "over_s": 600}}
    answer.pop("committed")
    p = FakePump(scripted(patient_bolus=answer), keys=host_keys)
    try:
        assert itb(p, "patient-bolus") == 0
    finally:
        p.close()
    out = capsys.readouterr().out
    assert out.startswith("patient bolus started: 25 mcg over 10 min\n  state          running\n")
    assert "  rate now       0.600 mL/day\n" in out
    assert p.cmds() == ["patient_bolus"]


def test_limits_show_and_set(host_keys, capsys):
    def limits(args):
        return {**LIMITS, **args, "changed": sorted(args), "warnings": []} if args else {**LIMITS, "changed": []}
    p = FakePump(scripted(limits=limits), keys=host_keys)
    try:
        assert itb(p, "limits") == 0
        shown = capsys.readouterr().out
        assert itb(p, "limits", "--origin", "cerebral", "--titration", "15", "--low-reservoir", "2.5",
                   "--bolus-cap", "80", "--initial-cap", "150", "--yes") == 0
        changed = capsys.readouterr().out
        assert itb(p, "--json", "limits", "--titration", "20", "--yes") == 0
        j = json.loads(capsys.readouterr().out)
    finally:
        p.close()
    assert p.requests[0] == {"cmd": "limits", "args": {}}
    assert p.requests[1] == {"cmd": "limits", "args": {}}  # read for the review
    assert p.requests[2] == {"cmd": "limits", "signed": True, "args": {
        "profile": "cerebral", "titration_pct": 15, "low_reservoir_nl": 2_500_000, "bolus_cap_mcg": 80,
        "initial_cap_mcg": 150}}
    for line in ("Safety limits (patient profile: spinal)",
                 "  titration      30 % over the lowest daily dose of the last 24 h (the spinal profile allows 10..30 %)",
                 "  hard maximum   2000 mcg/day (never exceeded)", "  bolus cap      100 mcg for a clinician single bolus",
                 "  low reservoir  2.00 mL (alarm threshold)",
                 "  last 24 h      no dose in the last 24 h (the initial cap applies)"):
        assert line in shown.splitlines(), shown
    assert "changed:" not in shown
    assert "changed: --bolus-cap, --initial-cap, --low-reservoir, --origin, --titration" in changed
    assert "  low reservoir  2.50 mL (alarm threshold)" in changed
    assert j["titration_pct"] == 20 and j["low_reservoir_ml"] == 2.0 and j["changed"] == ["titration_pct"]


# -- the real firmware on the virtual Pico -------------------------------------------------------

def status(port: str) -> dict:
    r = subprocess.run([ITBPUMP, "--port", port, "--json", "status"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def itbpump_at_terminal(port: str, typed: str, *argv: str) -> subprocess.CompletedProcess:
    """Run itbpump with a terminal on stdin on which the user typed `typed`."""
    master, slave = pty.openpty()
    try:
        os.write(master, typed.encode())
        return subprocess.run([ITBPUMP, "--port", port, *argv], stdin=slave, capture_output=True,
                              text=True, timeout=60)
    finally:
        os.close(master)
        os.close(slave)


def fill(port: str) -> None:
    r = subprocess.run([ITBPUMP, "--port", port, "refill", "--removed", "0", "--added", "20",
                        "--concentration", "500", "--yes"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def vpico_itb(port: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([ITBPUMP, "--port", port, *argv], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)


def test_vpico_dry_run_and_json_without_yes_change_nothing(vpico_port):
    fill(vpico_port)
    before = status(vpico_port)
    r = vpico_itb(vpico_port, "program", "continuous", "--dose", "150", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Review: " in r.stdout and "no dose in the last 24 h" in r.stdout
    assert r.stdout.rstrip().endswith("dry run: not applied: the pump keeps its current therapy")
    r = vpico_itb(vpico_port, "--json", "program", "continuous", "--dose", "150")
    assert r.returncode == 0, r.stdout + r.stderr
    j = json.loads(r.stdout)
    assert j["applied"] is False and j["review"]["new"]["daily_dose_mcg"] == 150
    assert j["review"]["current"]["mode"] == "stopped" and j["review"]["new"]["mode"] == "continuous"
    after = status(vpico_port)
    assert (after["state"], after["mode"], after["daily_dose_mcg"]) == (before["state"], before["mode"], 0)


def test_vpico_decline_changes_nothing_and_yes_applies(vpico_port):
    fill(vpico_port)
    for typed in ("n\n", "\n"):
        r = itbpump_at_terminal(vpico_port, typed, "program", "continuous", "--dose", "150")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Apply this change? [y/N]" in r.stdout and "not applied" in r.stdout
        assert status(vpico_port)["mode"] == "stopped"
    r = vpico_itb(vpico_port, "program", "continuous", "--dose", "150")  # no terminal: no
    assert r.returncode == 0 and "no terminal to answer on" in r.stdout
    assert status(vpico_port)["mode"] == "stopped"
    r = itbpump_at_terminal(vpico_port, "y\n", "program", "continuous", "--dose", "150")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "applied: program" in r.stdout
    s = status(vpico_port)
    assert (s["state"], s["mode"], s["daily_dose_mcg"]) == ("running", "continuous", 150)


def test_vpico_yes_applies_and_limits_refuse_with_a_hint(vpico_port):
    fill(vpico_port)
    r = vpico_itb(vpico_port, "--json", "program", "continuous", "--dose", "150", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    j = json.loads(r.stdout)
    assert j["applied"] is True and j["daily_dose_mcg"] == 150 and j["review"]["new"]["daily_dose_mcg"] == 150
    assert status(vpico_port)["daily_dose_mcg"] == 150
    # +100 % over the 24 h minimum: past the spinal profile's 30 % titration limit
    r = vpico_itb(vpico_port, "program", "continuous", "--dose", "300", "--yes")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stdout + r.stderr
    assert "titration limit" in r.stderr and "[" not in r.stderr
    r = vpico_itb(vpico_port, "--json", "program", "continuous", "--dose", "300", "--yes")
    j = json.loads(r.stdout)
    assert j["ok"] is False and j["limit"] == "titration" and j["code"] == 11
    assert status(vpico_port)["daily_dose_mcg"] == 150
