"""The host side of authentication: the key file, the HMAC recipes, and the client against the
firmware on a virtual Pico (provisioned keys, refusals, lockout, replay, roles)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
import time
from pathlib import Path

import pytest
import serial

from hil.vpico.control import SimControl, SimError
from host_tools import framing
from host_tools import keys as keylib
from host_tools.client import PumpClient, is_prepare, role_for
from host_tools.errors import AuthFailed, DeviceRefused, KeyFileError, NoKey, Unauthorized
from host_tools.keys import KeyStore

KEY = bytes(range(32))  # 000102..1f: the worked example of docs/protocol.md
NONCE = "00112233445566778899aabbccddeeff"
SERIAL = "ITB-8724537E"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the key file ----------------------------------------------------------------------------------
def test_default_path_follows_xdg_config_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert KeyStore().path == tmp_path / "cfg" / "itbpump" / "keys.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert KeyStore().path == tmp_path / "home" / ".config" / "itbpump" / "keys.json"


def test_add_writes_an_owner_only_file_in_an_owner_only_folder(tmp_path):
    store = KeyStore(tmp_path / "cfg" / "itbpump" / "keys.json")
    keys = keylib.new_device_keys()
    store.add(SERIAL, keys)
    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700
    assert json.loads(store.path.read_text()) == {SERIAL: keys}
    assert store.get(SERIAL, "clinician") == bytes.fromhex(keys["clinician"])
    assert store.roles(SERIAL) == ["clinician", "patient", "service"]
    assert [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_add_keeps_other_serials_and_replaces_only_the_given_roles(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    first, second = keylib.new_device_keys(), keylib.new_device_keys()
    store.add("ITB-00000001", first)
    store.add("ITB-00000002", second)
    new_patient = keylib.new_device_keys()["patient"]
    store.add("ITB-00000001", {"patient": new_patient})
    data = json.loads(store.path.read_text())
    assert data == {"ITB-00000001": {**first, "patient": new_patient}, "ITB-00000002": second}
    assert mode(store.path) == 0o600


def test_a_file_other_users_can_read_is_refused_naming_file_and_fix(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    store.add(SERIAL, keylib.new_device_keys())
    os.chmod(store.path, 0o644)
    with pytest.raises(KeyFileError) as e:
        store.get(SERIAL, "clinician")
    assert str(store.path) in str(e.value) and f"chmod 600 {store.path}" in str(e.value)
    assert "0644" in str(e.value)
    with pytest.raises(KeyFileError):
        store.add("ITB-00000003", keylib.new_device_keys())  # nor written through
    os.chmod(store.path, 0o600)
    assert store.get(SERIAL, "clinician") is not None


def test_missing_file_holds_no_keys_and_bad_input_is_refused(tmp_path):
    store = KeyStore(tmp_path / "nowhere" / "keys.json")
    assert store.get(SERIAL, "clinician") is None and store.roles(SERIAL) == []
    assert store.get(None, "clinician") is None
    with pytest.raises(KeyFileError, match="not a 32-byte hex key"):
        store.add(SERIAL, {"clinician": "abcd"})
    with pytest.raises(KeyFileError, match="role 'nurse'"):
        store.add(SERIAL, {"nurse": "00" * 32})
    assert not store.path.exists()
    store.path.parent.mkdir()
    store.path.write_text("{not json")
    os.chmod(store.path, 0o600)
    with pytest.raises(KeyFileError, match="not valid JSON"):
        store.get(SERIAL, "clinician")


def test_new_device_keys_are_fresh_32_byte_hex_per_role():
    a, b = keylib.new_device_keys(), keylib.new_device_keys()
    assert sorted(a) == ["clinician", "patient", "service"]
    for value in [*a.values(), *b.values()]:
        assert re.fullmatch("[0-9a-f]{64}", value)
    assert len(set(a.values()) | set(b.values())) == 6


# -- the HMAC recipes ------------------------------------------------------------------------------
def test_auth_response_and_session_key_match_hmac_and_the_documented_example():
    want = hmac.new(KEY, f"itbpump-auth|{SERIAL}|clinician|{NONCE}".encode(), hashlib.sha256).hexdigest()
    assert keylib.auth_response(KEY, SERIAL, "clinician", NONCE) == want
    assert want == "88d43d5ad91e5ae2e9f2ae25d1fd4f314db086861077c428827c80a82341e1a7"  # docs/protocol.md
    skey = hmac.new(KEY, f"itbpump-session|{NONCE}".encode(), hashlib.sha256).digest()
    assert keylib.session_key(KEY, NONCE) == skey
    assert skey.hex() == "3055c85c3d5a5c5f821b1c902ca008719b8cba33097b2a204773b2552f8ffd9b"
    assert keylib.auth_response(KEY, SERIAL, "patient", NONCE) != want  # the role is in the message


def test_sign_builds_the_body_byte_for_byte():
    skey = keylib.session_key(KEY, NONCE)
    body = keylib.sign(skey, "alarms", {"ack": True}, 1)
    head = b'{"cmd":"alarms","args":{"ack":true},"ctr":1'
    mac = hmac.new(skey, head, hashlib.sha256).hexdigest().encode()
    assert body == head + b',"mac":"' + mac + b'"}'
    assert re.fullmatch(rb',"mac":"[0-9a-f]{64}"\}', body[-74:])
    assert mac == b"6dc64eecddc6ef313f95fb8302ddea71241489af9f26c4f7103090b32f84211c"  # docs/protocol.md
    assert json.loads(body) == {"cmd": "alarms", "args": {"ack": True}, "ctr": 1, "mac": mac.decode()}
    flex = {"mode": "flex", "days": {"all": [[420, 300], [1320, 600]]}}
    body = keylib.sign(skey, "program", flex, 12)
    assert body[:-74] == b'{"cmd":"program","args":{"mode":"flex","days":{"all":[[420,300],[1320,600]]}},"ctr":12'
    assert hmac.compare_digest(hmac.new(skey, body[:-74], hashlib.sha256).hexdigest().encode(), body[-66:-2])


@pytest.mark.parametrize("cmd, args, role", [
    ("hello", {}, None), ("status", {}, None), ("log", {"last": 5}, None), ("auth", {"role": "clinician"}, None),
    ("alarms", {}, None), ("alarms", {"ack": True}, "clinician"), ("clock", {}, None),
    ("clock", {"utc_offset_min": 60}, "clinician"), ("limits", {}, None),
    ("limits", {"titration_pct": 20}, "clinician"), ("limits", {"hard_max_mcg": 1500}, "service"),
    ("ptm", {}, None), ("ptm", {"enable": False}, "clinician"), ("program", {"mode": "stop"}, "clinician"),
    ("bolus", {}, "clinician"), ("prime", {}, "clinician"), ("refill", {}, "clinician"),
    ("commit", {"token": "x"}, "clinician"), ("alarm_test", {}, "clinician"), ("patient_bolus", {}, "patient"),
])
def test_role_for_follows_the_role_table(cmd, args, role):
    assert role_for(cmd, args) == role


def test_two_phase_requests():
    assert all(is_prepare(c, {"x": 1}) for c in ("program", "bolus", "prime", "refill", "ptm"))
    assert not is_prepare("ptm", {}) and not is_prepare("limits", {"titration_pct": 20})
    assert not is_prepare("commit", {"token": "x"}) and not is_prepare("patient_bolus", {})


# -- on the virtual Pico: provisioning -------------------------------------------------------------
def provisioned(ctl: SimControl) -> tuple[str, dict]:
    """(serial, keys) as the supervisor wrote them into the board's flash."""
    serial_no = keylib.serial_of(ctl.paths.uid.read_bytes())
    return serial_no, json.loads(ctl.paths.device_keys.read_text())


def test_a_new_board_gets_keys_in_its_flash_and_in_the_host_key_file(vpico, vpico_port):
    serial_no, device_keys = provisioned(vpico)
    assert sorted(device_keys) == ["clinician", "patient", "service"]
    store = KeyStore()
    assert json.loads(store.path.read_text())[serial_no] == device_keys
    assert mode(store.path) == 0o600 and mode(store.path.parent) == 0o700
    assert mode(vpico.paths.device_keys) == 0o600  # the board's copy is private too
    with PumpClient(vpico_port) as c:
        assert c.identity["serial"] == serial_no == vpico.info()["serial"]


def test_restart_keeps_the_keys_and_fresh_makes_a_new_board_with_new_keys(vpico):
    serial_no, keys = provisioned(vpico)
    vpico.stop()
    vpico.start(clock="manual")
    assert provisioned(vpico) == (serial_no, keys)
    vpico.stop()
    vpico.start(clock="manual", fresh=True)
    new_serial, new_keys = provisioned(vpico)
    assert new_serial != serial_no and set(new_keys.values()).isdisjoint(keys.values())
    host = json.loads(KeyStore().path.read_text())
    assert host[serial_no] == keys and host[new_serial] == new_keys  # the old board's entry stays
    with PumpClient(vpico.info()["port"]) as c:
        assert c.identity["serial"] == new_serial
        c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)


def test_a_board_does_not_start_when_the_host_key_file_is_not_private(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    KeyStore().add("ITB-00000001", keylib.new_device_keys())
    os.chmod(KeyStore().path, 0o640)
    ctl = SimControl(tmp_path / "sim")
    t0 = time.monotonic()
    try:
        with pytest.raises(SimError, match="chmod 600"):
            ctl.start(clock="manual", fresh=True)
    finally:
        ctl.stop()
    assert time.monotonic() - t0 < 10  # said at once, not after the start timeout
    assert not ctl.paths.device_keys.exists()


# -- on the virtual Pico: who may do what ----------------------------------------------------------
REFILL = {"removed_nl": 0, "added_nl": 20_000_000, "concentration": 500}
CONTINUOUS = {"mode": "continuous", "dose_mcg": 100}


def test_the_provisioned_keys_program_in_two_phases(vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(**REFILL)
        done = c.program(**CONTINUOUS)
        assert done["committed"] == "program" and done["mode"] == "continuous"
        assert done["review"]["review"] is True and done["review"]["new"]["daily_dose_mcg"] == 100
        assert c.session is not None and c.session.role == "clinician" and c.session.ctr == 4
        status = c.status()
    assert (status["mode"], status["state"], status["reservoir_nl"]) == ("continuous", "running", 20_000_000)


def test_a_prepare_alone_changes_nothing_and_its_token_commits_it(vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(**REFILL)
        review = c.prepare("program", **CONTINUOUS)
        assert review["summary"] and len(review["token"]) == 16
        assert c.status()["mode"] == "stopped"
        assert c.commit(review["token"])["mode"] == "continuous"
        with pytest.raises(DeviceRefused) as e:
            c.commit(review["token"])  # used up
        assert e.value.name == "not_allowed"


def test_without_keys_changes_are_refused_and_reads_still_work(vpico_port, tmp_path):
    empty = KeyStore(tmp_path / "keys.json")
    with PumpClient(vpico_port, keys=empty) as c:
        with pytest.raises(NoKey) as e:
            c.program(**CONTINUOUS)
        assert c.identity["serial"] in str(e.value) and "clinician" in str(e.value)
        assert str(empty.path) in str(e.value)
        for cmd, args in (("refill", REFILL), ("program", CONTINUOUS), ("alarms", {"ack": True})):
            with pytest.raises(Unauthorized) as refused:
                c.send(cmd, args)  # unsigned, as a programmer without keys would send it
            assert (refused.value.code, refused.value.name) == (12, "unauthorized")
        status = c.status()
        assert (status["mode"], status["reservoir_nl"], status["concentration_mcg_per_ml"]) == ("stopped", 0, None)
        assert c.alarms()["alarms"] == status["alarms"]
        assert c.log(last=5)["capacity"] == 1024
        assert c.limits()["hard_max_mcg"] > 0 and c.ptm_status()["enabled"] is False


def test_a_wrong_key_is_refused(vpico_port, tmp_path):
    with PumpClient(vpico_port) as probe:
        serial_no = probe.identity["serial"]
    wrong = KeyStore(tmp_path / "keys.json")
    wrong.add(serial_no, keylib.new_device_keys())
    with PumpClient(vpico_port, keys=wrong) as c:
        with pytest.raises(AuthFailed) as e:
            c.refill(**REFILL)
        assert (e.value.code, e.value.name) == (13, "auth_failed") and c.session is None
    with PumpClient(vpico_port) as c:
        assert c.status()["reservoir_nl"] == 0


def test_five_wrong_responses_lock_authentication_even_for_the_right_key(vpico, vpico_port, tmp_path):
    with PumpClient(vpico_port) as probe:
        serial_no = probe.identity["serial"]
    wrong = KeyStore(tmp_path / "keys.json")
    wrong.add(serial_no, keylib.new_device_keys())
    with PumpClient(vpico_port, keys=wrong) as c:
        for _ in range(5):
            with pytest.raises(AuthFailed) as e:
                c.authenticate("clinician")
            assert e.value.retry_in_s is None  # wrong, not yet locked
    with PumpClient(vpico_port) as c:  # the right key
        with pytest.raises(AuthFailed) as e:
            c.authenticate("clinician")
        assert 0 < e.value.retry_in_s <= 600 and e.value.detail["retry_in_s"] == e.value.retry_in_s
        with pytest.raises(AuthFailed):
            c.program(**CONTINUOUS)
        assert c.status()["mode"] == "stopped"  # reads are not locked
    vpico.power_cut()
    with PumpClient(vpico_port) as c:
        with pytest.raises(AuthFailed) as e:
            c.authenticate("clinician")  # a restart does not unlock it
        assert e.value.retry_in_s is not None
    vpico.advance(601_000)
    with PumpClient(vpico_port) as c:
        assert c.authenticate("clinician").role == "clinician"
        c.refill(**REFILL)


def test_the_patient_key_cannot_program(vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(**REFILL)
        assert c.authenticate("patient").role == "patient"
        with pytest.raises(Unauthorized) as e:
            c.send("program", CONTINUOUS, signed=True)
        assert e.value.name == "unauthorized" and "patient" in e.value.text
        with pytest.raises(Unauthorized):
            c.send("limits", {"titration_pct": 20}, signed=True)
        assert c.status()["mode"] == "stopped"


def test_a_patient_key_alone_gives_the_patient_bolus(vpico_port, tmp_path):
    with PumpClient(vpico_port) as c:
        c.refill(**REFILL)
        c.program(**CONTINUOUS)
        enabled = c.ptm(enable=True, dose_mcg=10, over_s=600, max_per_day=3, lockout_s=3600)  # 130 mcg/day: +30 %
        assert enabled["committed"] == "ptm" and any("baclofen" in w for w in enabled["review"]["warnings"])
        assert c.ptm_status()["enabled"] is True
        serial_no = c.identity["serial"]
    patient_only = KeyStore(tmp_path / "keys.json")
    patient_only.add(serial_no, {"patient": json.loads(KeyStore().path.read_text())[serial_no]["patient"]})
    with PumpClient(vpico_port, keys=patient_only) as c:
        answer = c.patient_bolus()
        assert answer["bolus"]["dose_mcg"] == 10 and c.session.role == "patient"
        with pytest.raises(DeviceRefused) as e:
            c.patient_bolus()  # within the lockout
        assert e.value.detail.get("limit") == "ptm_lockout" and 0 < e.value.retry_in_s <= 3600
        with pytest.raises(NoKey):
            c.program(**CONTINUOUS)


def test_the_client_authenticates_again_after_hello_and_after_a_power_cut(vpico, vpico_port):
    with PumpClient(vpico_port) as c:
        c.refill(**REFILL)
        c.hello()
        assert c.session is None
        c.program(**CONTINUOUS)
        first = c.session
        vpico.power_cut()  # the device forgets its session; the client finds out (unauthorized)
        c.program(mode="continuous", dose_mcg=110)
        assert c.session is not None and c.session is not first and c.session.role == "clinician"
        assert c.status()["daily_dose_mcg"] == 110
        second = c.session
        with PumpClient(vpico_port) as other:  # another programmer's session replaces ours:
            other.authenticate("clinician")  # our next signature is wrong for the device (auth_failed)
        c.program(mode="continuous", dose_mcg=120)
        assert c.session is not second and c.status()["daily_dose_mcg"] == 120


# -- on the virtual Pico: captured frames ----------------------------------------------------------
class RawLink:
    """The programmer link by hand (host_tools.framing + pyserial), to send exactly chosen bytes."""

    def __init__(self, port: str):
        self.ser = serial.Serial(port, timeout=0.05)
        self.ser.reset_input_buffer()
        self.rx = b""

    def exchange(self, req_id: int, body: bytes) -> tuple[bytes, framing.Frame]:
        """Send one request frame; (the answer's raw COBS bytes, the decoded answer)."""
        self.ser.write(framing.encode(framing.REQUEST, req_id, body))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.rx += self.ser.read(4096)
            while b"\x00" in self.rx:
                raw, self.rx = self.rx.split(b"\x00", 1)
                if raw:
                    frame = framing.decode(raw)
                    if frame.req_id == req_id:
                        return raw, frame
        raise AssertionError(f"no answer to request {req_id}")

    def ask(self, req_id: int, cmd: str, args: dict) -> dict:
        raw, frame = self.exchange(req_id, json.dumps({"cmd": cmd, "args": args}).encode())
        assert frame.kind == framing.RESPONSE, frame.body
        return json.loads(frame.body)

    def close(self) -> None:
        self.ser.close()


def test_a_captured_signed_frame_is_refused_under_a_new_request_id(vpico, vpico_port):
    serial_no, device_keys = provisioned(vpico)
    key = bytes.fromhex(device_keys["clinician"])
    link = RawLink(vpico_port)
    try:
        link.ask(100, "hello", {})
        nonce = link.ask(101, "auth", {"role": "clinician"})["nonce"]
        response = keylib.auth_response(key, serial_no, "clinician", nonce)
        answer = json.dumps({"cmd": "auth", "args": {"role": "clinician", "response": response}}).encode()
        raw, frame = link.exchange(102, answer)
        assert json.loads(frame.body) == {"role": "clinician", "session": True}
        assert link.exchange(102, answer)[0] == raw  # a resent response: the kept answer, nonce not reused
        skey = keylib.session_key(key, nonce)
        body = keylib.sign(skey, "clock", {"utc_offset_min": 60}, 1)
        raw, frame = link.exchange(103, body)
        assert frame.kind == framing.RESPONSE and json.loads(frame.body)["utc_offset_min"] == 60
        again, _ = link.exchange(103, body)  # a retry: same id, same bytes: the kept answer
        assert again == raw
        _, replay = link.exchange(104, body)  # the captured frame, played again as a new request
        refused = json.loads(replay.body)
        assert replay.kind == framing.ERROR and (refused["code"], refused["error"]) == (13, "auth_failed")
        assert "replay" in refused["text"]
        forged = body.replace(b'"utc_offset_min":60', b'"utc_offset_min":-60').replace(b'"ctr":1', b'"ctr":2')
        _, altered = link.exchange(105, forged)
        assert json.loads(altered.body)["error"] == "auth_failed"
        assert link.ask(106, "clock", {})["utc_offset_min"] == 60  # neither changed anything
        _, ok = link.exchange(107, keylib.sign(skey, "clock", {"utc_offset_min": 0}, 2))
        assert ok.kind == framing.RESPONSE and json.loads(ok.body)["utc_offset_min"] == 0
        link.ask(108, "hello", {})  # ends the session: even a fresh counter is refused now
        _, after = link.exchange(109, keylib.sign(skey, "clock", {"utc_offset_min": 60}, 3))
        assert json.loads(after.body)["error"] == "unauthorized"
    finally:
        link.close()
