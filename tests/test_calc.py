"""calc start-dose (spec §1): 2 x the effective screening bolus, or the dose itself if its effect
lasted more than 8 h; host-only, opens no port."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host_tools import calc, cli
from host_tools.errors import UsageError


@pytest.mark.parametrize("screening,hours,dose", [
    (50, 6, 100), (75, 4, 150), (100, 1, 200),
    (50, 8, 100),  # exactly 8 h is not "more than 8 h"
    (50, 8.01, 50), (75, 12, 75), (100, 24, 100),
])
def test_rule(screening, hours, dose):
    r = calc.start_dose(screening, hours)
    assert r.start_dose_mcg_per_day == dose
    assert ("screening dose itself" in r.rule) == (hours > 8)
    assert ("2 x the" in r.rule) == (hours <= 8)


@given(st.sampled_from(calc.SCREENING_DOSES_MCG), st.floats(min_value=1e-3, max_value=72))
def test_dose_is_screening_or_twice_it(screening, hours):
    dose = calc.start_dose(screening, hours).start_dose_mcg_per_day
    assert dose == (screening if hours > 8 else 2 * screening)
    assert dose <= 200  # never above the initial-dose cap of spec §4


@pytest.mark.parametrize("screening", ["25", "60", "150", "50.0", "fifty", "-50", "0"])
def test_screening_must_be_a_label_dose(screening):
    with pytest.raises(UsageError, match="--screening must be one of the label's screening doses 50, 75 or 100 mcg"):
        calc.start_dose_text(screening, "6")


@pytest.mark.parametrize("hours,words", [("0", "more than 0 hours"), ("-2", "must be a number of hours"),
                                         ("6h", "must be a number of hours"), ("nan", "must be a number of hours"),
                                         ("", "must be a number of hours")])
def test_effect_hours_must_be_positive_number(hours, words):
    with pytest.raises(UsageError, match=words):
        calc.start_dose_text("50", hours)


def test_start_dose_refuses_bad_values_directly():
    with pytest.raises(UsageError, match="50, 75 or 100"):
        calc.start_dose(60, 6)
    for hours in (0, -1, float("nan"), float("inf")):
        with pytest.raises(UsageError, match="--effect-hours"):
            calc.start_dose(50, hours)


@pytest.fixture
def no_port(monkeypatch):
    """Any attempt to find or open a port fails the test."""
    def boom(*a, **k):
        raise AssertionError("calc must not open a port")
    monkeypatch.setattr(cli.ports, "resolve", boom)
    monkeypatch.setattr(cli, "PumpClient", boom)
    monkeypatch.setattr(cli, "_open_client", boom)


def test_cli_text(no_port, capsys):
    assert cli.main(["--port", "/dev/does-not-exist", "calc", "start-dose", "--screening", "75",
                     "--effect-hours", "10"]) == 0
    out = capsys.readouterr().out
    assert "Starting daily dose: 75 mcg/day" in out
    assert "more than 8 h" in out and "screening dose itself" in out
    assert "not a candidate" in out and "not a medical device" in out


def test_cli_json(no_port, capsys):
    assert cli.main(["--json", "calc", "start-dose", "--screening", "50", "--effect-hours", "6.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"start_dose_mcg_per_day": 100, "rule": calc.start_dose(50, 6.5).rule}


def test_cli_refusal_is_one_line(no_port, capsys):
    assert cli.main(["calc", "start-dose", "--screening", "60", "--effect-hours", "6"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "50, 75 or 100" in err
