"""Reviews show what changes (issue 11 item 3), as the clinician reads them on a virtual Pico:
every flex step against the current rate with a warning above 2 x, the bolus and refill rows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ITBPUMP = str(Path(sys.executable).parent / "itbpump")


@pytest.fixture
def itb(vpico, vpico_port):
    """itbpump on this virtual Pico, filled with 20 mL of 500 mcg/mL and running 100 mcg/day for a day."""
    env = {**os.environ, "ITBPUMP_PORT": vpico_port}

    def run(*argv: str) -> str:
        r = subprocess.run([ITBPUMP, *argv], capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    run("refill", "--removed", "0", "--added", "20", "--concentration", "500", "--yes")
    run("program", "continuous", "--dose", "100", "--yes")
    vpico.advance(86_400_000)
    return run


def row(text: str, label: str) -> list[str]:
    """The lines of a review row: its first line and the indented lines under it."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if re.match(rf"  {label}\s", line))
    out = [lines[at][2 + len(label):].strip()]
    for line in lines[at + 1:]:
        if not line.startswith("  " + " " * len(label)) or not line.strip():
            break
        out.append(line.strip())
    return out


def test_flex_review_shows_every_step_and_warns_above_twice_the_current_rate(itb):
    out = itb("program", "flex", "--step", "00:00=80", "--step", "06:00=90", "--step", "22:00=250", "--dry-run")
    steps = row(out, "steps")
    assert steps == ["every day",
                     "00:00  80 mcg/day  -20.0 % against the current 100 mcg/day",
                     "06:00  90 mcg/day  -10.0 % against the current 100 mcg/day",
                     "22:00  250 mcg/day  +150.0 % against the current 100 mcg/day (2.5 x)"]
    assert row(out, "largest step") == ["+150.0 % (22:00, 250 mcg/day against 100 mcg/day now)"]
    change = row(out, "change")[0]
    # the day's total, what the titration guard judges: (80 x 6 h + 90 x 16 h + 250 x 2 h) / 24 h = 100.8
    assert change == "+0.8 % against 100 mcg/day, the lowest daily dose in the last 24 h"
    assert "the 22:00 step (250 mcg/day) is more than twice the current rate (100 mcg/day)" in row(out, "warnings")
    quiet = itb("program", "flex", "--step", "00:00=90", "--step", "22:00=190", "--dry-run")
    assert "twice" not in quiet and len(row(quiet, "steps")) == 3


def test_bolus_review_shows_dose_volume_duration_times_and_the_dates_it_moves(itb):
    out = itb("bolus", "--dose", "50", "--over", "30m", "--dry-run")
    assert row(out, "bolus") == ["50 mcg = 0.10 mL over 30 min"]
    runs = row(out, "runs")[0]
    start, end = re.fullmatch(r"(\d{4}-\d\d-\d\d (\d\d:\d\d)) to (\d\d:\d\d)", runs).group(2, 3)
    h, m = map(int, start.split(":"))
    assert end == f"{(h + (m + 30) // 60) % 24:02d}:{(m + 30) % 60:02d}"
    # 0.1 mL at 0.2 mL/day: the alarm and refill dates come half a day earlier
    assert row(out, "effect") == ["alarm and refill dates 12 h earlier"]
    cur, new = row(out, "alarm date")[0].split("   ")[0], row(out, "alarm date")[0].split()[-2:]
    assert cur.split() != new


def test_refill_review_shows_removed_expected_added_concentration_reservoir_and_bridge(itb):
    out = itb("refill", "--removed", "10", "--added", "20", "--concentration", "1000", "--dry-run")
    assert row(out, "removed") == ["10.00 mL, expected 19.80 mL (off by 9.80 mL)"]
    assert row(out, "added") == ["20.00 mL of 1000 mcg/mL (was 500 mcg/mL)"]
    assert row(out, "reservoir") == ["20.00 mL after the refill"]
    # 0.14 mL of tubing (no catheter entered) at 0.2 mL/day: 16 h 48 min
    assert row(out, "bridge") == ["0.14 mL of the old 500 mcg/mL drug in the tubing and catheter goes first, at its "
                                  "own rate: about 16 h 48 min at the current prescription; then the rate for "
                                  "1000 mcg/mL"]
    same = itb("refill", "--removed", "19.8", "--added", "20", "--concentration", "500", "--dry-run")
    assert row(same, "bridge") == ["none (same concentration)"]
    assert row(same, "removed") == ["19.80 mL, expected 19.80 mL (off by 0.00 mL)"]


def test_limits_and_clock_changes_are_reviewed_and_confirmed(itb):
    """They change safety margins and therapy timing: current beside new, then only --yes (or y at
    the prompt) applies; --dry-run, --json without --yes and no terminal apply nothing."""
    import json

    out = itb("limits", "--origin", "cerebral", "--low-reservoir", "3", "--dry-run")
    assert row(out, "origin") == ["spinal    cerebral"] and row(out, "low reservoir") == ["2.00 mL   3.00 mL"]
    assert "not applied" in out
    doc = json.loads(itb("--json", "limits", "--low-reservoir", "3"))
    assert doc["applied"] is False and doc["review"]["new"] == {"low_reservoir_ml": 3.0}
    assert doc["review"]["current"] == {"low_reservoir_ml": 2.0}
    out = itb("limits", "--low-reservoir", "3")  # no terminal: nothing applied
    assert "no terminal" in out and json.loads(itb("--json", "limits"))["low_reservoir_ml"] == 2.0
    out = itb("limits", "--low-reservoir", "3", "--yes")
    assert "changed: --low-reservoir" in out and json.loads(itb("--json", "limits"))["low_reservoir_ml"] == 3.0

    out = itb("clock", "--utc-offset", "+02:00", "--dry-run")
    local = row(out, "local time")[0]
    assert "(UTC+00:00)" in local and "(UTC+02:00)" in local and "local time moves +2 h" in out
    assert json.loads(itb("--json", "clock"))["utc_offset"] == "+00:00"
    out = itb("clock", "--utc-offset", "+02:00", "--yes")
    assert out.splitlines()[-2].endswith("local time (UTC+02:00)") or "(UTC+02:00)" in out
    assert json.loads(itb("--json", "clock"))["utc_offset"] == "+02:00"
