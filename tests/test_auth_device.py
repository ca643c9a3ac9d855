"""Who may do what (spec §7; contract /work/issue5-interface.md): the device's side of HMAC-SHA256
challenge-response, signed requests and roles, CPython device, real frames.

Also a Hypothesis state machine for the protocol session: random interleavings of hello, auth
(right and wrong keys, every role), signed requests with fresh and stale counters, replays,
retries, prepare and commit with live, stale and made-up tokens, and time passing, checked
against a small model of who may do what and which tokens are live.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import shutil
import tempfile

from safety import auth
from core import errors
import pytest
from core.device import Device
from device_harness import Pump, advance, boot, change, events
from hypothesis import HealthCheck, event, example, given, settings, strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)
from device_session import KEYS, DeviceSession

CAP_NL = 20_000_000
WRONG = "44" * 32  # a key the pump does not have
PTM = {"enable": True, "dose_mcg": 5, "over_s": 600, "max_per_day": 4, "lockout_s": 3600}

pytestmark = pytest.mark.usefixtures("fast_calls")


# -- a pump and a programmer ----------------------------------------------------------------------
def signed(s: DeviceSession, cmd: str, **args) -> tuple[bool, dict]:
    """One request signed in s's session whatever its role (no automatic authentication)."""
    return s.wire(s.body(cmd, args, True))


def unsigned(s: DeviceSession, cmd: str, **args) -> tuple[bool, dict]:
    return s.wire(json.dumps({"cmd": cmd, "args": args}).encode())


def running(flash_dir: str, keys: bool = True) -> tuple[Device, DeviceSession]:
    """A pump with its keys, 20 mL of 500 mcg/mL, 100 mcg/day; then hello: no session."""
    p = Pump(flash_dir)
    p.change("refill", removed_nl=0, added_nl=CAP_NL, concentration=500)
    p.change("program", mode="continuous", dose_mcg=100)
    p.advance(60)
    dev, s = p.dev, p.s
    if not keys:
        os.remove(os.path.join(flash_dir, "keys.json"))
    good, _ = unsigned(s, "hello")
    assert good and dev.session.auth is None
    s.role = None
    return dev, s


@pytest.fixture
def pump(flash) -> tuple[Device, DeviceSession]:
    return running(flash)


def snapshot(dev: Device) -> tuple:
    th = dev.therapy
    return (dev.fsm.state, th.mode, th.daily_x1440, th.d.rate, th.conc, th.reservoir_nl, th.offset_min, th.now_s(),
            th.b_end, th.priming, copy.deepcopy(dev.safety.lim), copy.deepcopy(dev.safety.ptm), list(dev.safety.hist), list(dev.safety.ptm_used),
            dev.safety.low_reservoir_nl, dict(dev.alarms.active), dev.alarms.tone_at, dev.storage.log_seq, dev.session.pending)


# -- HMAC --------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=200), msg=st.binary(max_size=400))
@example(key=b"k" * 64, msg=b"block-sized key")
@example(key=b"k" * 65, msg=b"one byte over a block: hashed first")
@example(key=b"", msg=b"")
def test_firmware_hmac_matches_pythons(key, msg):
    assert auth.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_firmware_hmac_rfc4231_case_2():
    assert auth.hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


# -- no session: only reads ---------------------------------------------------------------------
NEEDS_A_ROLE = [
    ("program", {"mode": "continuous", "dose_mcg": 110}), ("program", {"mode": "stop", "reason": "x"}),
    ("bolus", {"dose_mcg": 10, "over_s": 600}), ("prime", {"catheter_nl": 0}),
    ("refill", {"removed_nl": 0, "added_nl": 1_000_000, "concentration": 500}), ("commit", {"token": "0" * 16}),
    ("ptm", PTM), ("ptm", {"enable": False}), ("limits", {"titration_pct": 20}), ("limits", {"hard_max_mcg": 1500}),
    ("clock", {"utc_offset_min": 60}), ("clock", {"set_s": 900_000_000}), ("alarms", {"ack": True}),
    ("alarm_test", {}), ("patient_bolus", {}),
]


@pytest.mark.parametrize("cmd, args", NEEDS_A_ROLE, ids=[f"{c}-{'-'.join(a)}".strip("-") for c, a in NEEDS_A_ROLE])
@pytest.mark.parametrize("how", ["unsigned", "signed-without-session"])
def test_without_a_session_every_clinician_command_is_unauthorized(pump, cmd, args, how):
    dev, s = pump
    before = snapshot(dev)
    if how == "unsigned":
        good, out = unsigned(s, cmd, **args)
    else:
        s.skey, s.ctr = os.urandom(32), 0
        good, out = signed(s, cmd, **args)
    assert not good and out["code"] == errors.UNAUTHORIZED and out["error"] == "unauthorized", out
    assert cmd in out["text"] and "authenticate first" in out["text"], out
    assert snapshot(dev) == before


READS = [("hello", {}), ("status", {}), ("diag", {}), ("log", {}), ("log", {"last": 3}), ("alarms", {}),
         ("clock", {}), ("limits", {}), ("ptm", {}), ("auth", {"role": "clinician"})]


@pytest.mark.parametrize("cmd, args", READS, ids=[f"{c}-{'-'.join(a)}".strip("-") for c, a in READS])
def test_without_a_session_reads_work(pump, cmd, args):
    dev, s = pump
    before = snapshot(dev)
    good, out = unsigned(s, cmd, **args)
    assert good, out
    if cmd == "limits":
        assert out["hard_max_mcg"] == 2000 and out["titration_pct"] == 30
    if cmd == "ptm":
        assert out["enabled"] is False
    if cmd == "auth":
        assert set(out) == {"role", "nonce", "serial"} and len(out["nonce"]) == 32 and out["serial"] == "ITB-DEADBEEF"
    assert snapshot(dev) == before


def test_a_pump_without_keys_can_only_be_read(flash):
    dev, s = running(flash, keys=False)
    before = snapshot(dev)
    for cmd, args in READS:
        good, out = unsigned(s, cmd, **args)
        assert good, (cmd, out)
    for role in ("clinician", "patient", "service"):
        good, out = s.auth(role)
        assert not good and out["code"] == errors.UNAUTHORIZED, out
        assert f"no {role} key" in out["text"] and "can only be read" in out["text"], out
    assert dev.session.auth is None and dev.session.auth_fails == 0
    for cmd, args in NEEDS_A_ROLE:
        good, out = unsigned(s, cmd, **args)
        assert not good and out["code"] == errors.UNAUTHORIZED, out
    assert snapshot(dev) == before


# -- authentication failures and the lockout ----------------------------------------------------
def test_a_wrong_key_fails_and_is_logged(pump):
    dev, s = pump
    seq = dev.storage.log_seq
    good, out = s.auth("clinician", WRONG)
    assert not good and out["code"] == errors.AUTH_FAILED and out["error"] == "auth_failed", out
    assert "clinician" in out["text"] and "retry_in_s" not in out, out
    assert dev.session.auth is None
    assert events(s, seq) == [("auth_fail", "wrong response for the clinician key (1 in a row)")]
    good, out = unsigned(s, "program", mode="continuous", dose_mcg=110)
    assert not good and out["code"] == errors.UNAUTHORIZED


def test_failures_must_be_in_a_row_to_lock(pump):
    dev, s = pump
    for _ in range(4):
        assert not s.auth("clinician", WRONG)[0]
    assert s.auth("clinician")[0]
    for _ in range(4):
        assert not s.auth("patient", WRONG)[0]
    good, out = s.auth("clinician")
    assert good, out


def test_five_wrong_responses_lock_authentication_for_600_s_across_a_reboot(flash):
    dev, s = running(flash)
    seq = dev.storage.log_seq
    for i in range(5):
        good, out = s.auth("clinician", WRONG)
        assert not good and out["code"] == errors.AUTH_FAILED, out
    logged = events(s, seq)
    assert [e for e, _ in logged] == ["auth_fail"] * 5 + ["auth_locked"], logged
    assert logged[-2][1] == "wrong response for the clinician key (5 in a row)"
    # locked: even the right key (the challenge itself is refused), for every role
    for role in ("clinician", "patient", "service"):
        good, out = s.auth(role)
        assert not good and out["code"] == errors.AUTH_FAILED and out["retry_in_s"] == 600, out
        assert "locked" in out["text"] and "600" in out["text"], out
    advance(dev, 100)
    good, out = s.auth("clinician")
    assert not good and out["retry_in_s"] == 500, out
    # the lock survives a power cut: a new device on the same flash (its RTC kept the time)
    dev = boot(flash, rtc=dev.therapy.now_s())
    s = DeviceSession(dev, override=None)
    good, out = s.auth("clinician")
    assert not good and out["code"] == errors.AUTH_FAILED and out["retry_in_s"] == 500, out
    advance(dev, 499)
    good, out = s.auth("clinician")
    assert not good and out["retry_in_s"] == 1, out
    advance(dev, 1)
    good, out = s.auth("clinician")
    assert good and out == {"role": "clinician", "session": True}, out
    good, out = signed(s, "limits", titration_pct=20)
    assert good and out["titration_pct"] == 20, out


def test_the_failure_count_survives_a_reboot(flash):
    dev, s = running(flash)
    for _ in range(3):
        assert not s.auth("clinician", WRONG)[0]
    dev = boot(flash)
    s = DeviceSession(dev, override=None)
    for _ in range(2):
        assert not s.auth("clinician", WRONG)[0]
    good, out = s.auth("clinician")
    assert not good and out.get("retry_in_s") == 600, out


def test_a_success_resets_the_saved_failure_count(flash):
    """4 failures, a success, a reboot, 1 failure: not locked (the success was saved, too)."""
    dev, s = running(flash)
    for _ in range(4):
        assert not s.auth("clinician", WRONG)[0]
    assert s.auth("clinician")[0]
    dev = boot(flash)
    s = DeviceSession(dev, override=None)
    assert dev.session.auth_fails == 0
    assert not s.auth("clinician", WRONG)[0]
    good, out = s.auth("clinician")
    assert good, out


# -- signed requests: replays, tampering ---------------------------------------------------------
def test_a_replayed_signed_frame_is_refused(pump):
    dev, s = pump
    assert s.auth("clinician")[0]
    body = s.body("limits", {"titration_pct": 20}, True)
    good, out = s.wire(body)
    assert good and out["titration_pct"] == 20
    dev.safety.lim["titration"] = 30  # (so that a replay that got through would show)
    before, seq = snapshot(dev), dev.storage.log_seq
    good, out = s.wire(body)  # the same bytes under a new request id
    assert not good and out["code"] == errors.AUTH_FAILED and "replayed request refused" in out["text"], out
    assert "counter 1 is not above 1" in out["text"], out
    assert snapshot(dev)[:-2] == before[:-2] and dev.safety.lim["titration"] == 30
    assert events(s, seq) == [("auth_fail", "a replayed limits request (counter 1)")]
    # an older counter with a fresh body, signed with the right key: still a replay
    s.ctr = 0
    good, out = signed(s, "limits", titration_pct=25)
    assert not good and out["code"] == errors.AUTH_FAILED and "replayed" in out["text"], out
    s.ctr = 1
    good, out = signed(s, "limits", titration_pct=25)  # ctr 2: above the last accepted
    assert good and out["titration_pct"] == 25, out


def test_a_signed_frame_from_an_earlier_session_is_refused(pump):
    dev, s = pump
    assert s.auth("clinician")[0]
    body = s.body("limits", {"titration_pct": 20}, True)
    assert s.auth("clinician")[0]  # a new session: a new nonce, a new session key
    seq = dev.storage.log_seq
    good, out = s.wire(body)
    assert not good and out["code"] == errors.AUTH_FAILED and "message authentication failed" in out["text"], out
    assert dev.safety.lim["titration"] == 30
    assert events(s, seq) == [("auth_fail", "a limits request with a bad signature (wrong session key or altered request)")]


@pytest.mark.parametrize("tamper", ["args", "cmd", "ctr", "mac", "unsigned", "truncated-mac"])
def test_a_tampered_body_is_refused(pump, tamper):
    dev, s = pump
    assert s.auth("clinician")[0]
    body = s.body("limits", {"titration_pct": 20}, True)
    bad = {"args": body.replace(b'"titration_pct":20', b'"titration_pct":25'),
           "cmd": body.replace(b'"cmd":"limits"', b'"cmd":"clock"'),
           "ctr": body.replace(b'"ctr":1', b'"ctr":2'),
           "mac": body[:-3] + (b"0" if body[-3:-2] != b"0" else b"1") + body[-2:],
           "unsigned": json.dumps({"cmd": "limits", "args": {"titration_pct": 20}, "ctr": 1}).encode(),
           "truncated-mac": body[:-10] + b'"}'}[tamper]
    assert bad != body
    before = snapshot(dev)
    good, out = s.wire(bad)
    assert not good and out["code"] == errors.AUTH_FAILED, out
    assert ("must be signed" if tamper in ("unsigned", "truncated-mac") else "message authentication failed") in out["text"]
    assert snapshot(dev)[:-2] == before[:-2] and dev.safety.lim["titration"] == 30
    good, out = s.wire(body)  # the genuine one still works: its counter was not used up
    assert good and out["titration_pct"] == 20, out


# -- roles ----------------------------------------------------------------------------------------
def test_a_patient_may_only_ask_for_a_patient_bolus(pump):
    dev, s = pump
    change(s, "ptm", **PTM)
    assert s.auth("patient")[0]
    before = snapshot(dev)
    for cmd, args in NEEDS_A_ROLE:
        if cmd == "patient_bolus":
            continue
        good, out = signed(s, cmd, **args)
        assert not good and out["code"] == errors.UNAUTHORIZED, (cmd, out)
        assert "this session is patient" in out["text"], out
    assert snapshot(dev) == before
    good, out = signed(s, "patient_bolus")
    assert good and out["bolus"] == {"dose_mcg": 5, "over_s": 600}, out
    assert dev.therapy.b_dose == 5 and len(dev.safety.ptm_used) == 1


def test_a_clinician_session_may_also_give_a_patient_bolus(pump):
    dev, s = pump
    change(s, "ptm", **PTM)
    good, out = signed(s, "patient_bolus")
    assert good and s.role == "clinician", out


def test_a_service_session_sets_the_hard_maximum_and_nothing_else(pump):
    dev, s = pump
    assert s.auth("service")[0]
    good, out = signed(s, "limits", hard_max_mcg=1500)
    assert good and out["hard_max_mcg"] == 1500 and out["changed"] == ["hard_max"], out
    assert dev.safety.lim["hard_max"] == 1500
    before = snapshot(dev)
    for cmd, args in NEEDS_A_ROLE:
        if cmd == "limits" and "hard_max_mcg" in args:
            continue
        good, out = signed(s, cmd, **args)
        assert not good and out["code"] == errors.UNAUTHORIZED and "this session is service" in out["text"], (cmd, out)
    assert snapshot(dev) == before


def test_a_clinician_cannot_set_the_hard_maximum(pump):
    dev, s = pump
    assert s.auth("clinician")[0]
    before = snapshot(dev)
    good, out = signed(s, "limits", hard_max_mcg=1500)
    assert not good and out["code"] == errors.UNAUTHORIZED and "service key" in out["text"], out
    assert snapshot(dev) == before and dev.safety.lim["hard_max"] == 2000


def test_a_patient_bolus_needs_the_pump_enabled_for_it(pump):
    dev, s = pump
    assert s.auth("patient")[0]
    good, out = signed(s, "patient_bolus")
    assert not good and out["code"] == errors.NOT_ALLOWED and "patient bolus is off" in out["text"], out


# -- challenge and response ----------------------------------------------------------------------
def _response(key_hex: str, serial: str, role: str, nonce: str) -> str:
    return hmac.new(bytes.fromhex(key_hex), f"itbpump-auth|{serial}|{role}|{nonce}".encode(), hashlib.sha256).hexdigest()


def test_a_response_without_a_challenge_is_refused(pump):
    dev, s = pump
    seq = dev.storage.log_seq
    good, out = unsigned(s, "auth", role="clinician", response=_response(KEYS["clinician"], "ITB-DEADBEEF",
                                                                          "clinician", "00" * 16))
    assert not good and out["code"] == errors.BAD_ARGUMENT and "challenge" in out["text"], out
    assert dev.session.auth is None and dev.storage.log_seq == seq
    # a challenge for another role does not do either
    good, ch = unsigned(s, "auth", role="patient")
    assert good
    good, out = unsigned(s, "auth", role="clinician",
                         response=_response(KEYS["clinician"], ch["serial"], "clinician", ch["nonce"]))
    assert not good and out["code"] == errors.BAD_ARGUMENT and dev.session.auth is None, out


def test_a_nonce_is_good_for_one_response(pump):
    dev, s = pump
    good, ch = unsigned(s, "auth", role="clinician")
    assert good
    resp = _response(KEYS["clinician"], ch["serial"], "clinician", ch["nonce"])
    good, out = unsigned(s, "auth", role="clinician", response=resp)
    assert good and out == {"role": "clinician", "session": True}
    good, out = unsigned(s, "auth", role="clinician", response=resp)  # the same response again
    assert not good and "challenge" in out["text"] and dev.session.auth is None, out
    # a wrong response uses the nonce up too
    good, ch = unsigned(s, "auth", role="clinician")
    good, out = unsigned(s, "auth", role="clinician", response="0" * 64)
    assert not good and out["code"] == errors.AUTH_FAILED
    good, out = unsigned(s, "auth", role="clinician",
                         response=_response(KEYS["clinician"], ch["serial"], "clinician", ch["nonce"]))
    assert not good and "challenge" in out["text"] and dev.session.auth is None, out


def test_every_challenge_has_a_new_nonce(pump):
    dev, s = pump
    nonces = {unsigned(s, "auth", role="clinician")[1]["nonce"] for _ in range(20)}
    assert len(nonces) == 20


@pytest.mark.parametrize("response", [None, 5, "zz" * 32, "0" * 63, ""])
def test_malformed_responses_fail(pump, response):
    dev, s = pump
    good, ch = unsigned(s, "auth", role="clinician")
    if response is None:  # a response that is JSON null is a challenge
        good, out = unsigned(s, "auth", role="clinician", response=None)
        assert good and "nonce" in out
        return
    good, out = unsigned(s, "auth", role="clinician", response=response)
    assert not good and out["code"] == errors.AUTH_FAILED and dev.session.auth is None, out


def test_hello_ends_the_session(pump):
    dev, s = pump
    assert s.auth("clinician")[0]
    assert signed(s, "limits", titration_pct=20)[0]
    assert unsigned(s, "hello")[0]
    good, out = signed(s, "limits", titration_pct=25)
    assert not good and out["code"] == errors.UNAUTHORIZED and dev.safety.lim["titration"] == 20, out


# -- the protocol session as a state machine ---------------------------------------------------
MAY = {"patient": ("patient", "clinician"), "clinician": ("clinician",), "service": ("service",)}
LOCK_S, PENDING_S = 600, 300


class Protocol(RuleBasedStateMachine):
    """The device against a model: session (role, key, last counter), open challenge, pending
    change (token, dose, expiry), failures in a row and the lock, the dose, auth_fail entries."""

    def __init__(self):
        super().__init__()
        self.cwd = os.getcwd()
        self.tmp = tempfile.mkdtemp(prefix="itb-auth-")
        flash_dir = os.path.join(self.tmp, "flash")
        self.dev, self.s = running(flash_dir)
        self.logged: list[str] = []
        real = self.dev.log

        def log(event, *record):
            self.logged.append(event)
            real(event, *record)

        self.dev.log = log  # type: ignore[method-assign]
        self.serial = self.dev.identity()
        self.ids = iter(range(1000, 60000))
        self.now = self.dev.therapy.now_s()
        self.session: tuple[str, bytes] | None = None
        self.last_ctr = 0
        self.nonce: tuple[str, str] | None = None
        self.pending: tuple[str, int, int] | None = None
        self.tokens: list[str] = []
        self.dose = 100
        self.fails = 0
        self.lock = 0
        self.auth_fails = 0
        self.sent: list[tuple[str, dict, int, bytes, bytes]] = []  # signed: cmd, args, ctr, key, body
        self.last: tuple[int, bytes, tuple, bool] | None = None  # id, body, answer, kept by the device
        self.guessed = False

    def teardown(self):
        os.chdir(self.cwd)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the link -----------------------------------------------------------------------------
    def send(self, body: bytes, kept: bool) -> tuple[bool, dict]:
        req_id = next(self.ids)
        answer = self.s.wire(body, req_id)
        self.last = (req_id, body, answer, kept)
        return answer

    def locked(self) -> bool:
        return self.lock > self.now

    # -- rules (the commonest choice first: Hypothesis leans to it) ------------------------------
    @initialize(role=st.sampled_from(["clinician", "patient", "service"]))
    def start(self, role):
        self.login(role, True)

    @rule(role=st.sampled_from(["clinician", "clinician", "patient", "service"]),
          right=st.sampled_from([True, True, True, False]))
    def login(self, role, right):
        """What a client does: a challenge, then its response."""
        self.challenge(role)
        if not self.locked():
            self.respond(role, right)

    @rule(dose=st.sampled_from([105, 110, 100]), ctr_mode=st.sampled_from(["next", "next", "jump", "same"]),
          own_key=st.sampled_from([True, True, False]))
    def prepare(self, dose, ctr_mode, own_key):
        self.request("program", {"mode": "continuous", "dose_mcg": dose}, ctr_mode, own_key)

    @rule(dose=st.sampled_from([110, 105, 100]), wait=st.sampled_from([0, 0, 301]))
    def change(self, dose, wait):
        """What a client does: prepare, then commit the review's token (in time, or too late)."""
        self.prepare(dose, "next", True)
        if wait:
            self.wait(wait)
        self.commit("live", "next", True)

    @rule(which=st.sampled_from(["live", "live", "stale", "made-up"]), ctr_mode=st.sampled_from(["next", "same"]),
          own_key=st.sampled_from([True, True, False]))
    def commit(self, which, ctr_mode, own_key):
        live = self.pending[0] if self.pending else None
        stale = [t for t in self.tokens if t != live]
        token = {"live": live, "stale": stale[-1] if stale else None}.get(which) or os.urandom(8).hex()
        self.request("commit", {"token": token}, ctr_mode, own_key)

    @rule(kind=st.sampled_from(["clock", "patient_bolus", "alarms", "hard_max"]),
          ctr_mode=st.sampled_from(["next", "next", "jump", "same", "lower"]), own_key=st.sampled_from([True, False]))
    def one_phase(self, kind, ctr_mode, own_key):
        cmd, args = {"clock": ("clock", {"utc_offset_min": 60}), "alarms": ("alarms", {"ack": True}),
                     "patient_bolus": ("patient_bolus", {}), "hard_max": ("limits", {"hard_max_mcg": 2000})}[kind]
        self.request(cmd, args, ctr_mode, own_key)

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def replay(self, data):
        """A signed body sent before, again under a new request id."""
        cmd, args, ctr, key, body = data.draw(st.sampled_from(self.sent[::-1]))
        self.check(cmd, args, ctr, key, body)

    @precondition(lambda self: self.last is not None and self.last[3])
    @rule()
    def retry(self):
        """The last frame again, same id and bytes: the kept answer, nothing executed."""
        req_id, body, answer, _ = self.last
        event("retry")
        assert self.s.wire(body, req_id) == answer

    @rule(seconds=st.sampled_from([200, 601, 301, 10]))
    def wait(self, seconds):
        advance(self.dev, seconds)
        self.now += seconds

    @rule()
    def hello(self):
        good, out = self.send(b'{"cmd":"hello"}', kept=False)
        assert good and out["serial"] == self.serial
        self.session = self.nonce = self.pending = None

    @rule(role=st.sampled_from(["clinician", "patient", "service"]))
    def challenge(self, role):
        good, out = self.send(json.dumps({"cmd": "auth", "args": {"role": role}}).encode(), kept=True)
        if self.locked():
            event("auth while locked")
            assert not good and out["code"] == errors.AUTH_FAILED and out["retry_in_s"] == self.lock - self.now, out
            return
        assert good and out["role"] == role and len(out["nonce"]) == 32, out
        self.session, self.pending, self.nonce = None, None, (role, out["nonce"])

    @rule(role=st.sampled_from(["clinician", "patient", "service"]), right=st.sampled_from([True, False]))
    def respond(self, role, right):
        """A response on its own: to the open challenge (any role's), or to none."""
        nonce = self.nonce[1] if self.nonce else "ab" * 16
        key = KEYS[role] if right else WRONG
        args = {"role": role, "response": _response(key, self.serial, role, nonce)}
        good, out = self.send(json.dumps({"cmd": "auth", "args": args}).encode(), kept=True)
        if self.locked():
            event("auth while locked")
            assert not good and out["code"] == errors.AUTH_FAILED and out["retry_in_s"] == self.lock - self.now, out
            return
        challenge, self.nonce, self.session, self.pending = self.nonce, None, None, None
        if challenge is None or challenge[0] != role:
            event("response without its challenge")
            assert not good and out["code"] == errors.BAD_ARGUMENT, out
        elif right:
            event(f"session {role}")
            assert good and out == {"role": role, "session": True}, out
            skey = hmac.new(bytes.fromhex(KEYS[role]), f"itbpump-session|{nonce}".encode(), hashlib.sha256).digest()
            self.session, self.last_ctr, self.fails = (role, skey), 0, 0
        else:
            assert not good and out["code"] == errors.AUTH_FAILED and "retry_in_s" not in out, out
            self.fails += 1
            self.auth_fails += 1
            if self.fails >= 5:
                event("locked")
                self.fails, self.lock = 0, self.now + LOCK_S

    @precondition(lambda self: not self.guessed)
    @rule(role=st.sampled_from(["clinician", "patient", "service"]))
    def guess(self, role):
        """Someone without the key tries five times (once per run: the lock holds 600 s)."""
        self.guessed = True
        for _ in range(5):
            self.login(role, False)

    # -- requests ------------------------------------------------------------------------------
    def request(self, cmd: str, args: dict, ctr_mode: str, own_key: bool) -> None:
        key = self.session[1] if self.session and own_key else os.urandom(32)
        ctr = {"next": self.last_ctr + 1, "jump": self.last_ctr + 7, "same": self.last_ctr,
               "lower": max(0, self.last_ctr - 1)}[ctr_mode]
        text = json.dumps({"cmd": cmd, "args": args, "ctr": ctr}, separators=(",", ":"))[:-1].encode()
        body = text + b',"mac":"' + hmac.new(key, text, hashlib.sha256).hexdigest().encode() + b'"}'
        self.sent.append((cmd, args, ctr, key, body))
        self.check(cmd, args, ctr, key, body)

    def check(self, cmd: str, args: dict, ctr: int, key: bytes, body: bytes) -> None:
        """Send a signed body; what the model expects of it."""
        prepare = cmd == "program"
        good, out = self.send(body, kept=not prepare)
        need = "patient" if cmd == "patient_bolus" else "service" if "hard_max_mcg" in args else "clinician"
        if self.session is None or self.session[0] not in MAY[need]:
            event("unauthorized")
            assert not good and out["code"] == errors.UNAUTHORIZED, out
            return
        if key != self.session[1]:
            event("bad mac")
            assert not good and out["code"] == errors.AUTH_FAILED and "authentication failed" in out["text"], out
            self.auth_fails += 1
            return
        if ctr <= self.last_ctr:
            event("replay")
            assert not good and out["code"] == errors.AUTH_FAILED and "replayed" in out["text"], out
            self.auth_fails += 1
            return
        self.last_ctr = ctr
        event(f"accepted {cmd}")
        if cmd == "patient_bolus":
            assert not good and out["code"] == errors.NOT_ALLOWED, out  # PTM is off
        elif prepare:
            assert good and out["review"] and out["new"]["daily_dose_mcg"] == args["dose_mcg"], out
            self.pending = (out["token"], args["dose_mcg"], self.now + PENDING_S)
            self.tokens.append(out["token"])
        elif cmd == "commit":
            p = self.pending
            if p is None or args["token"] != p[0]:
                event("commit refused: no pending" if p is None else "commit refused: other token")
                assert not good and out["code"] == errors.NOT_ALLOWED, out
            elif self.now > p[2]:
                event("commit refused: expired")
                assert not good and out["code"] == errors.NOT_ALLOWED and "expired" in out["text"], out
                self.pending = None
            else:
                event("committed")
                assert good and out["committed"] == "program" and out["daily_dose_mcg"] == p[1], out
                self.dose, self.pending = p[1], None
        else:
            assert good, out

    # -- the device agrees with the model -------------------------------------------------------
    @invariant()
    def agrees(self):
        dev = self.dev
        assert dev.therapy.now_s() == self.now
        if self.session is None:
            assert dev.session.auth is None
        else:
            assert dev.session.auth == [self.session[0], self.session[1], self.last_ctr]
        assert (dev.session.pending and dev.session.pending[0]) == (self.pending and self.pending[0])
        assert (dev.session.nonce and dev.session.nonce[1]) == (self.nonce and self.nonce[1])
        assert dev.therapy.daily_x1440 == self.dose * 1440 and dev.fsm.state == "running"
        assert (dev.session.auth_fails, dev.session.auth_lock) == (self.fails, self.lock)
        assert self.logged.count("auth_fail") == self.auth_fails


def test_protocol_session_state_machine():
    run_state_machine_as_test(Protocol, settings=settings(max_examples=75, stateful_step_count=50, deadline=None,
                                                          suppress_health_check=[HealthCheck.too_slow]))
