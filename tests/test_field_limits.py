"""Field ranges and safety limits (spec §4, §9; contract /work/issue5-interface.md), CPython device.

Every programmable field of every request is tried just below its minimum, just above its
maximum and with a wrong type: the refusal names the field, the limit and the value, and the
pump is otherwise unchanged (state, therapy, limits, PTM, the 24 h dose history, and the event
log: a refusal logs nothing). Then each safety limit, at its boundary: the binding limit is
named with its numbers, and the error carries `limit` and `override`.
"""

from __future__ import annotations

import copy

import device_harness
from core import errors
import pytest
from core.device import Device

REASON_MAX = 200  # the contract's limit for an override or stop reason
CAP_NL = 20_000_000  # MemHal's 20 mL reservoir

pytestmark = pytest.mark.usefixtures("fast_calls")


# -- a running pump -------------------------------------------------------------------------------
class Pump(device_harness.Pump):
    """A booted device with keys and a clinician programmer (no automatic override)."""

    def auth_for(self, cmd: str, args: dict) -> None:
        role = self.s.needs(cmd, args)
        if role and self.s.role != role:
            good, out = self.s.auth(role)
            assert good, out


def snapshot(dev: Device) -> tuple:
    th = dev.therapy
    return (dev.fsm.state, th.mode, th.daily_x1440, th.d.rate, th.conc, th.reservoir_nl, th.offset_min,
            th.now_s(), th.dose, th.flex, th.b_end, th.priming, copy.deepcopy(dev.safety.lim), copy.deepcopy(dev.safety.ptm),
            list(dev.safety.hist), list(dev.safety.ptm_used), dev.safety.low_reservoir_nl, dict(dev.alarms.active), dev.storage.log_seq,
            dev.session.pending is None)


def running(flash_dir: str, dose: int = 100) -> Pump:
    """Filled with 20 mL of 500 mcg/mL and running `dose` mcg/day (within the initial-dose cap)."""
    p = Pump(flash_dir)
    p.change("refill", removed_nl=0, added_nl=CAP_NL, concentration=500)
    p.change("program", mode="continuous", dose_mcg=dose)
    p.advance(60)  # the dose has been in effect for a while (one lasting no time never counts)
    return p


def started(flash_dir: str, dose: int) -> Pump:
    """A new pump (no dose history) started at `dose` mcg/day, with an override where it needs one."""
    p = Pump(flash_dir)
    p.change("refill", removed_nl=0, added_nl=CAP_NL, concentration=500)
    p.change("program", mode="continuous", dose_mcg=dose, override="transfer from another pump")
    assert p.dev.safety.hist[1:] == [dose * 1440, dose * 1440]
    return p


@pytest.fixture
def pump(flash) -> Pump:
    return running(flash)


# -- every field: below, above, wrong type -----------------------------------------------------
CONT = {"mode": "continuous", "dose_mcg": 100}
FLEX = {"mode": "flex", "days": {"all": [[0, 100], [720, 110]]}}
PERIODIC = {"mode": "periodic", "basal_mcg": 100, "bolus_mcg": 10, "every_s": 86400, "over_s": 600,
            "start_min": 60}
STOP = {"mode": "stop", "reason": "trial over"}
BOLUS = {"dose_mcg": 50, "over_s": 3600}
PRIME = {"catheter_nl": 200_000}
REFILL = {"removed_nl": CAP_NL, "added_nl": CAP_NL, "concentration": 500}
CLOCK = {"set_s": 800_000_100, "utc_offset_min": 60}
PTM = {"enable": True, "dose_mcg": 5, "over_s": 600, "max_per_day": 4, "lockout_s": 3600}

BASES = [("program", CONT), ("program", FLEX), ("program", PERIODIC), ("program", STOP),
         ("program", {**CONT, "override": "x" * REASON_MAX}), ("bolus", BOLUS), ("prime", PRIME), ("refill", REFILL),
         ("clock", CLOCK), ("limits", {"profile": "cerebral", "titration_pct": 5}),
         ("limits", {"initial_cap_mcg": 2000, "bolus_cap_mcg": 500, "low_reservoir_nl": 1_000_000}),
         ("limits", {"low_reservoir_nl": 5_000_000}),
         ("limits", {"hard_max_mcg": 200}), ("ptm", PTM), ("ptm", {"enable": False})]


def _flex(steps) -> dict:
    return {"mode": "flex", "days": {"all": steps}}


def _ranged(name, cmd, base, field, lo, hi, unit, wrong):
    """Cases for an int field lo..hi: lo - 1 and hi + 1 (naming the bound) and a wrong type."""
    code = errors.BAD_ARGUMENT
    return [
        pytest.param(cmd, {**base, field: lo - 1}, code, [field, str(lo - 1), f"{lo}..", unit], id=f"{name}-{field}-below"),
        pytest.param(cmd, {**base, field: hi + 1}, code, [field, str(hi + 1), f"..{hi}", unit], id=f"{name}-{field}-above"),
        pytest.param(cmd, {**base, field: wrong}, code, [field, "whole number", repr(wrong)], id=f"{name}-{field}-type"),
    ]


def _reason_cases(name, cmd, base, field):
    code = errors.BAD_ARGUMENT
    return [
        pytest.param(cmd, {**base, field: ""}, code, [field, "1..", "0 characters"], id=f"{name}-{field}-empty"),
        pytest.param(cmd, {**base, field: "   "}, code, [field, "1..", "3 characters"], id=f"{name}-{field}-blank"),
        pytest.param(cmd, {**base, field: "x" * (REASON_MAX + 1)}, code,
                     [field, f"..{REASON_MAX}", f"{REASON_MAX + 1} characters"], id=f"{name}-{field}-above"),
        pytest.param(cmd, {**base, field: 5}, code, [field, "characters", "got 5"], id=f"{name}-{field}-type"),
    ]


FIELD_CASES = (
    # program continuous
    _ranged("program-continuous", "program", CONT, "dose_mcg", 1, 100000, "mcg/day", "100")
    + [pytest.param("program", {**CONT, "dose_mcg": 1.5}, errors.BAD_ARGUMENT, ["dose_mcg", "whole number", "1.5"],
                    id="program-continuous-dose_mcg-float"),
       pytest.param("program", {**CONT, "dose_mcg": True}, errors.BAD_ARGUMENT, ["dose_mcg", "whole number", "True"],
                    id="program-continuous-dose_mcg-bool"),
       pytest.param("program", {"mode": "continuous"}, errors.BAD_ARGUMENT, ["dose_mcg", "whole number", "None"],
                    id="program-continuous-dose_mcg-missing"),
       pytest.param("program", {**CONT, "mode": "warp"}, errors.BAD_ARGUMENT,
                    ["mode", "continuous, flex, periodic, stop", "'warp'"], id="program-mode-unknown"),
       # the pump's rate range at 500 mcg/mL: 24..12000 mcg/day
       pytest.param("program", {**CONT, "dose_mcg": 23}, errors.BAD_ARGUMENT,
                    ["dose 23 mcg/day", "0.046000 mL/day", "500 mcg/mL", "0.048..24 mL/day"], id="program-rate-below"),
       pytest.param("program", {**CONT, "dose_mcg": 12001}, errors.BAD_ARGUMENT,
                    ["dose 12001 mcg/day", "24.002000 mL/day", "0.048..24 mL/day"], id="program-rate-above")]
    + _reason_cases("program-continuous", "program", CONT, "override")
    # flex
    + [pytest.param("program", _flex([[-1, 100]]), errors.BAD_ARGUMENT, ["start_min", "-1", "0..1439"],
                    id="program-flex-start_min-below"),
       pytest.param("program", _flex([[0, 100], [1440, 110]]), errors.BAD_ARGUMENT, ["start_min", "1440", "0..1439"],
                    id="program-flex-start_min-above"),
       pytest.param("program", _flex([["07:00", 100]]), errors.BAD_ARGUMENT, ["start_min", "whole number", "'07:00'"],
                    id="program-flex-start_min-type"),
       pytest.param("program", _flex([[0, 0]]), errors.BAD_ARGUMENT, ["dose_mcg", " 0 ", "1..100000"],
                    id="program-flex-dose_mcg-below"),
       pytest.param("program", _flex([[0, 100001]]), errors.BAD_ARGUMENT, ["dose_mcg", "100001", "1..100000"],
                    id="program-flex-dose_mcg-above"),
       pytest.param("program", _flex([[0, 99.5]]), errors.BAD_ARGUMENT, ["dose_mcg", "whole number", "99.5"],
                    id="program-flex-dose_mcg-type"),
       pytest.param("program", _flex([]), errors.BAD_ARGUMENT, ["flex day all", "at least one step"],
                    id="program-flex-steps-below"),
       pytest.param("program", _flex([[60 * i, 100] for i in range(14)]), errors.BAD_ARGUMENT,
                    ["at most 13 flex steps", "got 14"], id="program-flex-steps-above"),
       pytest.param("program", _flex([[0, 100, 5]]), errors.BAD_ARGUMENT, ["[start_min, dose_mcg]", "[0, 100, 5]"],
                    id="program-flex-step-type"),
       pytest.param("program", {"mode": "flex", "days": [[0, 100]]}, errors.BAD_ARGUMENT, ["flex needs 'days'"],
                    id="program-flex-days-type")]
    # periodic
    + _ranged("program-periodic", "program", PERIODIC, "basal_mcg", 1, 100000, "mcg/day", "100")
    + _ranged("program-periodic", "program", PERIODIC, "bolus_mcg", 1, 100000, "mcg", True)
    + _ranged("program-periodic", "program", PERIODIC, "every_s", 600, 604800, "seconds", "1h")
    + _ranged("program-periodic", "program", PERIODIC, "over_s", 1, 86400, "seconds", 1.5)
    + _ranged("program-periodic", "program", PERIODIC, "start_min", 0, 1439, "minutes after midnight", "01:00")
    + [pytest.param("program", {**PERIODIC, "every_s": 3600, "over_s": 3600}, errors.BAD_ARGUMENT,
                    ["over_s 3600", "shorter than every_s 3600"], id="program-periodic-over_s-every_s")]
    # stop
    + [pytest.param("program", {"mode": "stop"}, errors.BAD_ARGUMENT, ["stopping therapy needs a reason"],
                    id="program-stop-reason-missing")]
    + _reason_cases("program-stop", "program", STOP, "reason")
    # bolus (and its cap, a safety limit)
    + _ranged("bolus", "bolus", BOLUS, "dose_mcg", 1, 100000, "mcg", "50")
    + _ranged("bolus", "bolus", BOLUS, "over_s", 1, 86400, "seconds", 60.0)
    + [pytest.param("bolus", {**BOLUS, "dose_mcg": 101}, errors.LIMIT, ["bolus cap", "101 mcg", "100 mcg"],
                    id="bolus-cap-above")]
    # prime
    + _ranged("prime", "prime", PRIME, "catheter_nl", 0, 1_000_000, "nL", "0.2")
    # refill
    + _ranged("refill", "refill", REFILL, "removed_nl", 0, CAP_NL, "nL", "0")
    + _ranged("refill", "refill", REFILL, "added_nl", 1, CAP_NL, "nL", 10.5)
    + [pytest.param("refill", {**REFILL, "concentration": c}, errors.BAD_ARGUMENT,
                    ["concentration", repr(c), "drug library", "50, 500, 1000, 2000"], id=f"refill-concentration-{i}")
       for i, c in (("below", 49), ("above", 2001), ("between", 750), ("type", "500"), ("float", 500.0))]
    # clock
    + _ranged("clock", "clock", CLOCK, "set_s", 0, 0x3FFFFFFF, "seconds", "2026-01-01")
    + _ranged("clock", "clock", CLOCK, "utc_offset_min", -720, 840, "minutes", "+01:00")
    # limits (the titration limit's range is its profile's)
    + [pytest.param("limits", {"profile": p}, errors.BAD_ARGUMENT, ["profile", "spinal, cerebral, pediatric", repr(p)],
                    id=f"limits-profile-{i}") for i, p in (("unknown", "lumbar"), ("type", 1), ("null", None))]
    + _ranged("limits", "limits", {}, "titration_pct", 10, 30, "spinal", "20")
    + _ranged("limits-spinal", "limits", {"profile": "spinal"}, "titration_pct", 10, 30, "spinal", 20.0)
    + _ranged("limits-cerebral", "limits", {"profile": "cerebral"}, "titration_pct", 5, 15, "cerebral", "10")
    + _ranged("limits-pediatric", "limits", {"profile": "pediatric"}, "titration_pct", 5, 15, "pediatric", None)
    + _ranged("limits", "limits", {}, "initial_cap_mcg", 1, 2000, "mcg", "200")
    + _ranged("limits", "limits", {}, "bolus_cap_mcg", 1, 500, "mcg", 100.0)
    + [pytest.param("limits", {"low_reservoir_nl": 999_999}, errors.BAD_ARGUMENT,
                    ["low_reservoir_nl", "999999", "1000000.."], id="limits-low_reservoir_nl-below"),
       pytest.param("limits", {"low_reservoir_nl": 5_000_001}, errors.BAD_ARGUMENT,
                    ["low_reservoir_nl", "5000001", "..5000000"], id="limits-low_reservoir_nl-above"),
       pytest.param("limits", {"low_reservoir_nl": 2.0}, errors.BAD_ARGUMENT,
                    ["low_reservoir_nl", "whole number", "2.0"], id="limits-low_reservoir_nl-type")]
    # hard_max_mcg (service key): never below the initial-dose cap (200), never above 2000
    + _ranged("limits", "limits", {}, "hard_max_mcg", 200, 2000, "mcg", "2000")
    + [pytest.param("limits", {"hard_max_mcg": 1500, "bolus_cap_mcg": 50}, errors.BAD_ARGUMENT,
                    ["hard_max_mcg", "on its own"], id="limits-hard_max_mcg-with-others"),
       pytest.param("limits", {"titration": 20}, errors.BAD_ARGUMENT, ["unknown limit titration"],
                    id="limits-unknown-field")]
    # ptm
    + _ranged("ptm", "ptm", PTM, "dose_mcg", 1, 100, "mcg", "5")
    + _ranged("ptm", "ptm", PTM, "over_s", 60, 86400, "seconds", 600.0)
    + _ranged("ptm", "ptm", PTM, "max_per_day", 1, 24, "boluses per 24 h", True)
    + _ranged("ptm", "ptm", PTM, "lockout_s", 900, 86400, "seconds", "1h")
    + [pytest.param("ptm", {**PTM, "enable": e}, errors.BAD_ARGUMENT, ["enable", "true or false", repr(e)],
                    id=f"ptm-enable-{i}") for i, e in (("int", 1), ("str", "yes"), ("null", None))]
    + [pytest.param("ptm", {**PTM, "over_s": 1000, "lockout_s": 900}, errors.BAD_ARGUMENT,
                    ["over_s 1000", "lockout_s 900"], id="ptm-over_s-lockout_s")]
    + _reason_cases("ptm", "ptm", PTM, "override")
)


@pytest.mark.parametrize("cmd, args", [pytest.param(c, a, id=f"{c}-{i}") for i, (c, a) in enumerate(BASES)])
def test_the_valid_requests_the_cases_start_from_are_accepted(pump, cmd, args):
    """So that each refusal below comes from the one field it changes."""
    good, out = pump.send(cmd, **args)
    assert good, out


@pytest.mark.parametrize("cmd, args, code, words", FIELD_CASES)
def test_out_of_range_field_is_refused_naming_it_and_changes_nothing(pump, cmd, args, code, words):
    pump.auth_for(cmd, args)
    before = snapshot(pump.dev)
    good, out = pump.send(cmd, **args)
    assert not good, out
    assert out["code"] == code, out
    for w in words:
        assert w in out["text"], (w, out["text"])
    assert snapshot(pump.dev) == before, "a refused request changed the pump or wrote to the log"


@pytest.mark.parametrize("field", ["reason", "override"])
def test_a_reason_of_the_maximum_length_is_accepted(pump, field):
    args = {"mode": "stop", "reason": "r" * REASON_MAX} if field == "reason" else {**CONT, "override": "o" * REASON_MAX}
    good, out = pump.send("program", **args)
    assert good, out


def test_a_refused_clock_change_sets_neither_the_clock_nor_the_offset(pump):
    pump.auth_for("clock", CLOCK)
    before = snapshot(pump.dev)
    good, out = pump.send("clock", set_s=700_000_000, utc_offset_min=900)
    assert not good and "utc_offset_min 900 is outside -720..840" in out["text"], out
    assert snapshot(pump.dev) == before


# -- the safety limits --------------------------------------------------------------------------
def limit_refusal(p: Pump, limit: str, may_override: bool, words: list[str], **args) -> dict:
    """A prepare refused by the safety limit `limit`; nothing changes, nothing is logged."""
    p.auth_for("program", args)
    before = snapshot(p.dev)
    good, out = p.send("program", **args)
    assert not good, out
    assert out["code"] == errors.LIMIT and out["error"] == "limit", out
    assert out["limit"] == limit and out["override"] is may_override, out
    for w in words:
        assert w in out["text"], (w, out["text"])
    assert snapshot(p.dev) == before
    return out


def prepared(p: Pump, **args) -> dict:
    good, rv = p.send("program", **args)
    assert good, rv
    return rv


@pytest.mark.parametrize("profile, pct", [("spinal", 30), ("spinal", 10), ("cerebral", 15), ("cerebral", 5),
                                          ("pediatric", 15), ("pediatric", 12)])
def test_titration_limit_per_profile(pump, profile, pct):
    """The lowest daily dose of the last 24 h is 100 mcg/day: at most +pct %, no override."""
    good, out = pump.send("limits", profile=profile, titration_pct=pct)
    assert good and out["titration_pct"] == pct and out["profile"] == profile, out
    top = 100 + pct
    rv = prepared(pump, mode="continuous", dose_mcg=top)
    assert rv["change_tenths_pct"] == pct * 10 and rv["reference"]["min_mcg"] == 100 and rv["overrides"] == []
    words = ["titration limit", f"{top + 1} mcg/day", f"+{pct + 1}.0 %", "(100 mcg/day)", f"{profile} profile",
             f"+{pct} %", f"at most {top} mcg/day"]
    limit_refusal(pump, "titration", False, words, mode="continuous", dose_mcg=top + 1)
    # no override passes it
    limit_refusal(pump, "titration", False, words, mode="continuous", dose_mcg=top + 1, override="patient in pain")


def test_profile_change_brings_the_titration_limit_into_its_range(pump):
    good, out = pump.send("limits", profile="cerebral")
    assert good and out["titration_pct"] == 15 and out["titration_range"] == [5, 15], out
    assert out["changed"] == ["profile", "titration"] and "15 %" in out["warnings"][0]
    limit_refusal(pump, "titration", False, ["cerebral profile", "+15 %", "at most 115 mcg/day"],
                  mode="continuous", dose_mcg=116)


def test_titration_counts_periodic_boluses_and_enabled_patient_boluses(pump):
    # periodic: 100 + 10 x 4 per day = 140 mcg/day > 130
    limit_refusal(pump, "titration", False, ["140 mcg/day", "at most 130 mcg/day"],
                  **{**PERIODIC, "every_s": 21600})
    # PTM: 100 + 10 mcg x 4 per day = 140 mcg/day > 130
    pump.auth_for("ptm", PTM)
    before = snapshot(pump.dev)
    good, out = pump.send("ptm", **{**PTM, "dose_mcg": 10})
    assert not good and out["limit"] == "titration" and "140 mcg/day" in out["text"], out
    assert snapshot(pump.dev) == before
    rv = pump.change("ptm", **{**PTM, "dose_mcg": 5})["review"]  # 120: fits
    assert rv["new"]["daily_dose_mcg"] == 120 and "not indicated for baclofen" in rv["warnings"][0]
    # with PTM on, a program's worst case is its dose + 20
    limit_refusal(pump, "titration", False, ["131 mcg/day", "at most 130 mcg/day"], mode="continuous", dose_mcg=111)


def log_after(p: Pump, seq: int) -> list[tuple[str, str]]:
    return p.events(seq, last=50)


def test_initial_dose_cap_needs_an_override_which_is_logged_with_its_reason(flash):
    p = Pump(flash)
    p.change("refill", removed_nl=0, added_nl=CAP_NL, concentration=500)
    rv = prepared(p, mode="continuous", dose_mcg=200)  # at the cap: no override needed
    assert rv["overrides"] == [] and rv["reference"] == {"min_mcg": None, "max_mcg": None}
    limit_refusal(p, "initial_cap", True, ["initial-dose cap", "201 mcg/day", "no dose in effect", "200 mcg/day",
                                           "override"], mode="continuous", dose_mcg=201)
    reason = "screening: 100 mcg lasted over 8 h, doubling; " * 3  # 138 characters: logged whole, one entry
    seq = p.dev.storage.log_seq
    out = p.change("program", mode="continuous", dose_mcg=201, override=reason[:110])
    assert out["daily_dose_mcg"] == 201 and out["committed"] == "program"
    assert [o["limit"] for o in out["overrides"]] == ["initial_cap"] == [o["limit"] for o in out["review"]["overrides"]]
    logged = log_after(p, seq)
    assert ("override", "the initial-dose cap at 201 mcg/day; reason: " + reason[:110]) in logged
    assert not any(e == "reason" for e, _ in logged)
    assert ("program", "therapy changed from stopped to continuous 201 mcg/day (daily dose)") in logged, logged
    # the cap can be set (clinician)
    good, lim = p.send("limits", initial_cap_mcg=150)
    assert good and lim["initial_cap_mcg"] == 150 and lim["changed"] == ["initial"], lim


def test_initial_dose_cap_follows_its_setting(flash):
    p = Pump(flash)
    p.change("refill", removed_nl=0, added_nl=CAP_NL, concentration=500)
    good, _ = p.send("limits", initial_cap_mcg=150)
    assert good
    prepared(p, mode="continuous", dose_mcg=150)
    limit_refusal(p, "initial_cap", True, ["151 mcg/day", "above 150 mcg/day"], mode="continuous", dose_mcg=151)


def test_ceiling_needs_an_override_which_is_logged(flash):
    p = started(flash, 800)
    prepared(p, mode="continuous", dose_mcg=1000)
    limit_refusal(p, "ceiling", True, ["ceiling", "1001 mcg/day", "above 1000 mcg/day", "override"],
                  mode="continuous", dose_mcg=1001)
    seq = p.dev.storage.log_seq
    out = p.change("program", mode="continuous", dose_mcg=1001, override="documented response above 1000")
    assert out["daily_dose_mcg"] == 1001 and [o["limit"] for o in out["overrides"]] == ["ceiling"]
    logged = log_after(p, seq)
    assert ("override", "the ceiling at 1001 mcg/day; reason: documented response above 1000") in logged


def test_hard_maximum_is_never_passed_even_with_an_override(flash):
    p = started(flash, 1600)
    prepared(p, mode="continuous", dose_mcg=2000, override="at the hard maximum")
    words = ["hard maximum", "2001 mcg/day", "hard maximum 2000 mcg/day", "no override", "also over: ceiling"]
    limit_refusal(p, "hard_max", False, words, mode="continuous", dose_mcg=2001)
    limit_refusal(p, "hard_max", False, words[:4], mode="continuous", dose_mcg=2001, override="please")


def test_service_lowers_the_hard_maximum_below_the_ceiling(flash):
    p = Pump(flash)
    p.change("refill", removed_nl=0, added_nl=CAP_NL, concentration=500)
    good, out = p.send("limits", hard_max_mcg=300)
    assert good and out["hard_max_mcg"] == 300 and "below the ceiling" in out["warnings"][0], out
    prepared(p, mode="continuous", dose_mcg=300, override="start high")
    limit_refusal(p, "hard_max", False, ["301 mcg/day", "hard maximum 300 mcg/day"], mode="continuous",
                  dose_mcg=301, override="start high")


def test_the_binding_limit_is_the_one_no_override_passes(flash):
    """1050 mcg/day after 800: over the ceiling (1000, overridable) and the titration limit (1040, not)."""
    p = started(flash, 800)
    out = limit_refusal(p, "titration", False, ["titration limit", "at most 1040 mcg/day", "also over: ceiling"],
                        mode="continuous", dose_mcg=1050)
    assert "ceiling:" not in out["text"]
    limit_refusal(p, "titration", False, ["at most 1040 mcg/day"], mode="continuous", dose_mcg=1050, override="x")


def test_decrease_guard_allows_exactly_minus_20_percent(flash):
    p = started(flash, 500)
    rv = prepared(p, mode="continuous", dose_mcg=400)
    assert rv["overrides"] == [] and rv["change_tenths_pct"] == -200, rv
    limit_refusal(p, "decrease", True, ["decrease guard", "399 mcg/day", "-20.2 %", "(500 mcg/day)", "-20 %",
                                        "at least 400 without"], mode="continuous", dose_mcg=399)
    seq = p.dev.storage.log_seq
    out = p.change("program", mode="continuous", dose_mcg=399, override="sedation")
    assert [o["limit"] for o in out["overrides"]] == ["decrease"] and out["daily_dose_mcg"] == 399
    logged = log_after(p, seq)
    assert ("override", "the decrease guard at 399 mcg/day; reason: sedation") in logged


def test_stop_needs_a_reason_and_is_logged_as_an_override(pump):
    pump.auth_for("program", STOP)
    before = snapshot(pump.dev)
    good, out = pump.send("program", mode="stop")
    assert not good and out["code"] == errors.BAD_ARGUMENT and "needs a reason" in out["text"], out
    assert snapshot(pump.dev) == before
    seq = pump.dev.storage.log_seq
    out = pump.change("program", mode="stop", reason="infection at the pump site")
    assert out["state"] == "stopped" and out["mode"] == "stopped"
    assert [o["limit"] for o in out["overrides"]] == ["decrease"]
    assert "up to 100 mcg/day" in out["overrides"][0]["text"] and "withdrawal" in out["overrides"][0]["text"]
    logged = log_after(pump, seq)
    assert ("override", "the decrease guard at a stop; reason: infection at the pump site") in logged
    assert ("program", "therapy stopped (was continuous 100 mcg/day); reason: infection at the pump site") in logged, logged


def test_high_dose_warning_above_20_percent_at_500_or_more(flash):
    p = started(flash, 800)
    assert prepared(p, mode="continuous", dose_mcg=960)["warnings"] == []  # exactly +20 %
    rv = prepared(p, mode="continuous", dose_mcg=961)
    assert len(rv["warnings"]) == 1, rv
    w = rv["warnings"][0]
    for words in ("high dose", "+20.1 %", "800 mcg/day", "+20 %", "500 mcg/day"):
        assert words in w, w
    seq = p.dev.storage.log_seq
    out = p.change("program", mode="continuous", dose_mcg=961)
    assert out["warnings"] == [w] and ("high_dose", "961 mcg/day is more than +20 % over the lowest daily dose of the "
                                       "last 24 h (800 mcg/day), at 500 mcg/day or more: may be excessive"
                                       ) in log_after(p, seq)


def test_no_high_dose_warning_below_500(flash):
    p = started(flash, 400)
    assert prepared(p, mode="continuous", dose_mcg=520)["warnings"] == []  # +30 % at 400


def test_bolus_cap(pump):
    good, rv = pump.send("bolus", dose_mcg=100, over_s=3600)
    assert good, rv
    pump.auth_for("bolus", BOLUS)
    before = snapshot(pump.dev)
    good, out = pump.send("bolus", dose_mcg=101, over_s=3600)
    assert not good and out["code"] == errors.LIMIT and out["limit"] == "bolus_cap" and out["override"] is False
    assert "101 mcg" in out["text"] and "cap 100 mcg" in out["text"], out
    assert snapshot(pump.dev) == before
    good, lim = pump.send("limits", bolus_cap_mcg=40)
    assert good and lim["bolus_cap_mcg"] == 40
    good, out = pump.send("bolus", dose_mcg=41, over_s=3600)
    assert not good and out["limit"] == "bolus_cap" and "41 mcg" in out["text"] and "cap 40 mcg" in out["text"]


def test_patient_bolus_lockout_and_daily_maximum(pump):
    pump.change("ptm", enable=True, dose_mcg=5, over_s=600, max_per_day=2, lockout_s=3600)
    good, out = pump.send("patient_bolus")
    assert good and out["bolus"] == {"dose_mcg": 5, "over_s": 600}, out
    pump.advance(1000)
    before = snapshot(pump.dev)
    good, out = pump.send("patient_bolus")
    assert not good and out["code"] == errors.LIMIT and out["limit"] == "ptm_lockout", out
    assert out["retry_in_s"] == 2600 and "3600 s" in out["text"] and "2600 s" in out["text"]
    assert snapshot(pump.dev) == before
    pump.advance(2600)
    good, out = pump.send("patient_bolus")
    assert good, out
    pump.advance(3600)
    good, out = pump.send("patient_bolus")
    assert not good and out["limit"] == "ptm_daily_max" and out["override"] is False, out
    assert out["retry_in_s"] == 86400 - 3600 - 3600 and "at most 2" in out["text"]
