"""Two-phase programming (spec §4; contract /work/issue5-interface.md), CPython device, real frames.

A prepare answers a review and changes nothing (state, event log, flash); only a commit quoting
its token applies it, once, atomically. Whatever ends a session between the two (a wrong or
stale token, expiry, a new prepare, hello, auth, a power cut) leaves the old therapy running:
the 2021 field notice described pumps left stopped by incomplete updates.
"""

from __future__ import annotations

import copy
import os

import device_harness
from core import errors
import pytest
from core.device import Device
from device_session import DeviceSession

CAP_NL = 20_000_000
REVIEW_KEYS = {"review", "cmd", "serial", "token", "expires_s", "summary", "current", "new", "reference",
               "change_tenths_pct", "warnings", "overrides", "utc_offset_min"}
SIDE_KEYS = {"mode", "daily_dose_mcg", "rate_nl_per_day", "alarm_date", "refill_date"}
COMMIT_KEYS = {"state", "mode", "daily_dose_mcg", "rate_nl_per_day", "concentration_mcg_per_ml", "committed",
               "warnings", "overrides"}

pytestmark = pytest.mark.usefixtures("fast_calls")


# -- a pump and a programmer ----------------------------------------------------------------------
class Pump(device_harness.Pump):
    def power_cut(self) -> None:
        """The power fails and returns: a new device boots from the same flash; a new programmer."""
        self.dev = device_harness.boot(self.flash_dir)
        self.s = DeviceSession(self.dev, override=None)

    def prepare(self, cmd: str, **args) -> dict:
        good, rv = self.send(cmd, **args)
        assert good, rv
        assert rv["review"] is True and rv["cmd"] == cmd and rv["expires_s"] == 300, rv
        return rv

    def commit(self, token: str, **extra) -> tuple[bool, dict]:
        return self.send("commit", token=token, **extra)

    def change(self, cmd: str, **args) -> dict:
        """Prepare (checking the review) and commit; the commit's answer."""
        rv = self.prepare(cmd, **args)
        good, out = self.commit(rv["token"])
        assert good, out
        return out


def therapy(dev: Device) -> tuple:
    """What runs: state, prescription, rate, drug, limits, PTM, dose history."""
    th = dev.therapy
    return (dev.fsm.state, th.mode, th.daily_x1440, th.dose, th.flex, th.d.rate, th.conc, th.b_end, th.priming,
            copy.deepcopy(dev.safety.lim), copy.deepcopy(dev.safety.ptm), list(dev.safety.hist), dev.safety.low_reservoir_nl)


def snapshot(dev: Device) -> tuple:
    th = dev.therapy
    return therapy(dev) + (th.reservoir_nl, th.offset_min, th.now_s(), dict(dev.alarms.active), dev.storage.log_seq)


def flash_files(flash_dir: str) -> dict[str, bytes]:
    out = {}
    for name in sorted(os.listdir(flash_dir)):
        with open(os.path.join(flash_dir, name), "rb") as f:
            out[name] = f.read()
    return out


def running(flash_dir: str, dose: int = 100) -> Pump:
    """20 mL of 500 mcg/mL, `dose` mcg/day running for 10 minutes."""
    p = Pump(flash_dir)
    p.change("refill", removed_nl=0, added_nl=CAP_NL, concentration=500)
    p.change("program", mode="continuous", dose_mcg=dose, **({"override": "known dose"} if dose > 200 else {}))
    p.advance(600)
    return p


@pytest.fixture
def pump(flash) -> Pump:
    return running(flash)


def keeps_running(p: Pump, before: tuple, dose: int = 100) -> None:
    """The old therapy runs on: unchanged, and delivering (100 mcg/day at 500 mcg/mL: 800 strokes/day)."""
    assert therapy(p.dev) == before
    assert p.dev.fsm.state == "running" and p.dev.therapy.mode == "continuous"
    assert p.dev.therapy.daily_x1440 == dose * 1440
    strokes = p.dev.hal.strokes
    p.advance(3 * 3600)
    assert p.dev.hal.strokes - strokes in range(dose - 1, dose + 2)  # 8 strokes a day per mcg/day: 3 h = dose
    good, st = p.send("status")
    assert good and st["mode"] == "continuous" and st["daily_dose_mcg"] == dose and st["state"] == "running", st


PREPARES = {
    "program": {"mode": "continuous", "dose_mcg": 120},
    "program-flex": {"mode": "flex", "days": {"all": [[0, 100], [720, 120]]}},
    "program-stop": {"mode": "stop", "reason": "infection"},
    "bolus": {"dose_mcg": 50, "over_s": 3600},
    "prime": {"catheter_nl": 200_000},
    "refill": {"removed_nl": CAP_NL, "added_nl": 18_000_000, "concentration": 1000},
    "ptm": {"enable": True, "dose_mcg": 5, "over_s": 600, "max_per_day": 4, "lockout_s": 3600},
}


def _cmd(name: str) -> str:
    return name.split("-")[0]


# -- a prepare changes nothing; a commit applies exactly it, once ----------------------------------
@pytest.mark.parametrize("name", list(PREPARES))
def test_a_prepare_changes_nothing(pump, name):
    pump.s.auth("clinician")
    before, files = snapshot(pump.dev), flash_files(pump.flash_dir)
    rv = pump.prepare(_cmd(name), **PREPARES[name])
    assert set(rv) == REVIEW_KEYS and rv["serial"] == pump.dev.identity(), rv
    assert set(rv["current"]) == SIDE_KEYS and SIDE_KEYS <= set(rv["new"]), rv
    assert len(rv["token"]) == 16 and int(rv["token"], 16) >= 0
    assert rv["current"]["mode"] == "continuous" and rv["current"]["daily_dose_mcg"] == 100
    assert snapshot(pump.dev) == before, "a prepare changed the pump"
    assert flash_files(pump.flash_dir) == files, "a prepare wrote to flash (state or log)"


@pytest.mark.parametrize("name", list(PREPARES))
def test_a_commit_applies_exactly_the_prepared_change_once(pump, name):
    cmd = _cmd(name)
    rv = pump.prepare(cmd, **PREPARES[name])
    seq = pump.dev.storage.log_seq
    # the commit's own args cannot change what was reviewed
    good, out = pump.commit(rv["token"], dose_mcg=500, mode="stop", concentration=50)
    assert good, out
    assert set(out) == COMMIT_KEYS and out["committed"] == cmd, out
    assert out["warnings"] == rv["warnings"] and out["overrides"] == rv["overrides"]
    dev, th = pump.dev, pump.dev.therapy
    assert out["mode"] == th.mode == rv["new"]["mode"]
    if cmd != "ptm":  # (the review shows the worst case with patient boluses; the summary the prescription)
        assert out["daily_dose_mcg"] == rv["new"]["daily_dose_mcg"]
    if name == "program":
        assert (th.mode, th.daily_x1440, th.d.rate) == ("continuous", 120 * 1440, 240_000)
        assert rv["new"]["rate_nl_per_day"] == 240_000 and out["rate_nl_per_day"] == 240_000
    elif name == "program-flex":
        assert th.mode == "flex" and th.flex == ((((0, 100), (720, 120)),) * 7) and out["daily_dose_mcg"] == 110
    elif name == "program-stop":
        assert (dev.fsm.state, th.mode, th.d.rate) == ("stopped", "stopped", 0)
    elif name == "bolus":
        assert th.b_end >= 0 and th.b_dose == 50 and th.b_volume == 100_000 == rv["new"]["bolus"]["volume_nl"]
    elif name == "prime":
        assert dev.fsm.state == "priming" and th.prime_volume == 340_000 == rv["new"]["prime_nl"]
    elif name == "refill":
        assert (th.reservoir_nl, th.conc) == (18_000_000, 1000) and rv["new"]["rate_nl_per_day"] == 100_000
    elif name == "ptm":
        assert dev.safety.ptm == [5, 600, 4, 3600] and rv["new"]["ptm"]["enabled"] is True
        assert out["daily_dose_mcg"] == 100 and rv["new"]["daily_dose_mcg"] == 120  # worst case with 4 x 5 mcg
    logged = [e for e, _ in pump.events(seq)]
    assert logged.count(cmd) == 1, logged
    # used up: the same token again applies nothing
    after = snapshot(dev)
    good, again = pump.commit(rv["token"])
    assert not good and again["code"] == errors.NOT_ALLOWED and "no prepared change" in again["text"], again
    assert snapshot(dev) == after


# -- every way the session can end before its commit: the old therapy keeps running ---------------
def _wrong_token(p: Pump, rv: dict):
    other = "%016x" % (int(rv["token"], 16) ^ 1)
    return p.commit(other), ["does not match"]


def _no_pending(p: Pump, rv: dict):
    good, out = p.commit(rv["token"])  # applied: from now on nothing is pending
    assert good, out
    return p.commit("0123456789abcdef"), ["no prepared change"]


def _expired(p: Pump, rv: dict):
    p.advance(301)
    return p.commit(rv["token"]), ["expired", "5 min"]


def _replaced(p: Pump, rv: dict):
    p.prepare("program", mode="continuous", dose_mcg=110)
    return p.commit(rv["token"]), ["does not match"]


def _hello(p: Pump, rv: dict):
    good, _ = p.s.wire(b'{"cmd":"hello"}')
    assert good
    assert p.dev.session.pending is None  # (not visible on the link: a commit needs a new session, and auth drops it too)
    good, _ = p.s.auth("clinician")
    assert good
    return p.commit(rv["token"]), ["no prepared change"]


def _auth(p: Pump, rv: dict):
    good, _ = p.s.auth("clinician")
    assert good
    return p.commit(rv["token"]), ["no prepared change"]


def _power_cut(p: Pump, rv: dict):
    p.power_cut()
    return p.commit(rv["token"]), ["no prepared change"]


def _clock_set(p: Pump, rv: dict):
    good, out = p.send("clock", set_s=p.dev.therapy.now_s() + 3600)
    assert good, out
    return p.commit(rv["token"]), ["no prepared change"]


@pytest.mark.parametrize("end", [_wrong_token, _no_pending, _expired, _replaced, _hello, _auth, _power_cut, _clock_set],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_commit_that_does_not_match_a_live_review_applies_nothing(pump, end):
    rv = pump.prepare("program", mode="stop", reason="catheter revision")
    if end is _no_pending:
        rv = pump.prepare("program", mode="continuous", dose_mcg=100)  # a no-op change, committed below
    before = therapy(pump.dev)
    (good, out), words = end(pump, rv)
    assert not good and out["code"] == errors.NOT_ALLOWED and out["error"] == "not_allowed", out
    for w in words:
        assert w in out["text"], out
    assert "nothing applied" in out["text"] or "prepare it again" in out["text"], out
    keeps_running(pump, before if end not in (_no_pending, _clock_set) else therapy(pump.dev))


def test_a_wrong_token_leaves_the_prepared_change_for_the_right_one(pump):
    rv = pump.prepare("program", mode="continuous", dose_mcg=120)
    good, out = pump.commit("%016x" % (int(rv["token"], 16) ^ 1))
    assert not good and out["code"] == errors.NOT_ALLOWED
    good, out = pump.commit(rv["token"][:15])
    assert not good and out["code"] == errors.BAD_ARGUMENT and "16 hex" in out["text"], out
    good, out = pump.commit(rv["token"])
    assert good and out["daily_dose_mcg"] == 120, out


def test_a_second_prepare_replaces_the_first(pump):
    first = pump.prepare("program", mode="stop", reason="catheter revision")
    second = pump.prepare("bolus", dose_mcg=20, over_s=3600)
    assert first["token"] != second["token"]
    good, out = pump.commit(first["token"])
    assert not good and out["code"] == errors.NOT_ALLOWED
    good, out = pump.commit(second["token"])
    assert good and out["committed"] == "bolus" and out["state"] == "running", out
    assert pump.dev.therapy.b_dose == 20


def test_a_review_is_good_for_300_s_of_device_time(pump):
    rv = pump.prepare("program", mode="continuous", dose_mcg=120)
    pump.advance(300)
    good, out = pump.commit(rv["token"])
    assert good and out["daily_dose_mcg"] == 120, out


def test_a_power_cut_after_the_prepare_restores_the_old_therapy(pump):
    pump.prepare("program", mode="continuous", dose_mcg=130)
    before = therapy(pump.dev)
    pump.power_cut()
    assert pump.dev.session.pending is None
    assert therapy(pump.dev) == before
    keeps_running(pump, before)


def test_incident_2021_incomplete_session_keeps_old_therapy(flash):
    """2021 field notice: pumps were left stopped by incomplete programming sessions.

    A programmer prepares a stop and then goes away (the link drops and another programmer says
    hello); another prepares a new dose and the power fails before its commit. Each time the pump
    keeps delivering the old dose, and the late commit applies nothing.
    """
    p = running(flash, 100)
    before = therapy(p.dev)
    away = p.s
    rv = p.prepare("program", mode="stop", reason="replacing the catheter")
    assert rv["new"]["mode"] == "stopped" and rv["current"]["mode"] == "continuous"
    p.s = DeviceSession(p.dev, override=None)  # another programmer connects
    good, _ = p.s.wire(b'{"cmd":"hello"}')
    assert good
    keeps_running(p, before)
    good, out = away.request("commit", token=rv["token"])  # the first programmer's late commit
    assert not good and out["code"] == errors.UNAUTHORIZED, out
    good, out = p.commit(rv["token"])
    assert not good and out["code"] == errors.NOT_ALLOWED and "no prepared change" in out["text"], out
    keeps_running(p, before)

    rv = p.prepare("program", mode="continuous", dose_mcg=120)
    p.power_cut()
    good, out = p.commit(rv["token"])
    assert not good and out["code"] == errors.NOT_ALLOWED, out
    keeps_running(p, before)
    assert [e for e in p.dev.safety.hist[1::3] if e != 100 * 1440] == [], "only the old dose was ever in effect"


# -- a review that no longer holds --------------------------------------------------------------
def _history(p: Pump, first: int, second: int) -> None:
    """first mcg/day from now, second from 1 h later, then 24 h - 100 s more: `first` stays in
    the 24 h window for 100 more seconds."""
    p.change("program", mode="continuous", dose_mcg=first, override="known dose")
    p.advance(3600)
    p.change("program", mode="continuous", dose_mcg=second, override="known dose")
    p.advance(86400 - 100)


@pytest.mark.parametrize("case", ["decrease-override-no-longer-needed", "high-dose-warning-gone"])
def test_a_commit_whose_review_would_now_differ_is_refused(flash, case):
    p = Pump(flash)
    p.change("refill", removed_nl=0, added_nl=CAP_NL, concentration=500)
    if case.startswith("decrease"):
        _history(p, 500, 400)  # 400 is exactly -20 %: no override needed
        args = {"mode": "continuous", "dose_mcg": 350, "override": "sedation"}  # -30 % of 500
        rv = p.prepare("program", **args)
        assert [o["limit"] for o in rv["overrides"]] == ["decrease"] and rv["reference"]["max_mcg"] == 500, rv
    else:
        _history(p, 500, 650)  # +30 %
        args = {"mode": "continuous", "dose_mcg": 640}  # +28 % of 500, at 500 or more: warns
        rv = p.prepare("program", **args)
        assert len(rv["warnings"]) == 1 and "high dose" in rv["warnings"][0], rv
    before = therapy(p.dev)
    p.advance(200)  # the 500 mcg/day leaves the 24 h window
    seq = p.dev.storage.log_seq
    good, out = p.commit(rv["token"])
    assert not good and out["code"] == errors.NOT_ALLOWED and "changed since the review" in out["text"], out
    assert "nothing applied" in out["text"]
    assert therapy(p.dev) == before and p.dev.storage.log_seq == seq
    # the same request reviewed now shows what changed, and commits
    now = p.prepare("program", **args)
    assert (now["overrides"], now["warnings"]) == ([], []) and now["reference"]["max_mcg"] == 400 + 250 * (
        not case.startswith("decrease")), now
    good, out = p.commit(now["token"])
    assert good and out["daily_dose_mcg"] == args["dose_mcg"], out


def test_a_commit_after_the_limits_tightened_applies_nothing(pump):
    rv = pump.prepare("program", mode="continuous", dose_mcg=130)  # +30 %: the spinal default allows it
    good, out = pump.send("limits", titration_pct=20)
    assert good, out
    before, seq = therapy(pump.dev), pump.dev.storage.log_seq
    good, out = pump.commit(rv["token"])
    assert not good and out["code"] in (errors.NOT_ALLOWED, errors.LIMIT), out
    assert therapy(pump.dev) == before and pump.dev.storage.log_seq == seq


def test_a_commit_after_the_limits_tightened_is_refused_by_the_limit_that_binds_now(pump):
    """A commit checks every limit again: one that binds now refuses it with its own numbers
    (code 11), not a generic "changed since the review"."""
    rv = pump.prepare("program", mode="continuous", dose_mcg=130)
    good, out = pump.send("limits", titration_pct=20)
    assert good, out
    good, out = pump.commit(rv["token"])
    assert not good and out["code"] == errors.LIMIT and out["limit"] == "titration", out
    assert "at most 120 mcg/day" in out["text"], out


# -- retries: the same frame again gets the same answer, applied once -------------------------------
def test_a_retried_commit_gets_the_same_answer_and_applies_once(pump):
    rv = pump.prepare("program", mode="continuous", dose_mcg=120)
    body = pump.s.body("commit", {"token": rv["token"]}, True)
    good, first = pump.s.wire(body, 40000)
    assert good and first["committed"] == "program", first
    frame = pump.s.last_wire
    applied, seq = snapshot(pump.dev), pump.dev.storage.log_seq
    for _ in range(3):  # the answer was lost: the programmer sends the same frame again
        good, again = pump.s.wire(body, 40000)
        assert pump.s.last_wire == frame
        assert good and again == first, again
    assert snapshot(pump.dev) == applied and pump.dev.storage.log_seq == seq
    assert pump.dev.safety.hist[-2] == 120 * 1440 and pump.dev.safety.hist[-5] == 100 * 1440
    # the same bytes under a new request id are a new request: a replay, refused
    good, out = pump.s.wire(body, 40001)
    assert not good and out["code"] == errors.AUTH_FAILED and "replay" in out["text"], out
    assert snapshot(pump.dev)[:-1] == applied[:-1]  # (only the log moved: the replay is logged)


def test_a_retried_refused_commit_stays_refused_with_the_same_text(pump):
    pump.prepare("program", mode="continuous", dose_mcg=120)
    body = pump.s.body("commit", {"token": "0123456789abcdef"}, True)
    good, first = pump.s.wire(body, 777)
    assert not good and first["code"] == errors.NOT_ALLOWED
    good, again = pump.s.wire(body, 777)
    assert not good and again == first


def test_a_retried_prepare_gets_its_review_again(pump):
    args = {"mode": "continuous", "dose_mcg": 120}
    body = pump.s.body("program", args, True)
    good, first = pump.s.wire(body, 5000)
    assert good, first
    seq = pump.dev.storage.log_seq
    good, again = pump.s.wire(body, 5000)  # the review was lost on the link: the same frame again
    assert good, again
    assert again == first
    assert pump.dev.storage.log_seq == seq, "the resend was logged as an authentication failure"
    good, out = pump.commit(again["token"])
    assert good and out["daily_dose_mcg"] == 120
