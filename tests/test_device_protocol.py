"""The device core's protocol handling under CPython: answers, errors, retries, identity."""

from __future__ import annotations

import json
import os
import sys

from core import errors
import pytest
from core.device import Device
from memhal import MemHal

from host_tools import framing


TEST_COMMANDS = """
def count(dev, args):
    with open("count.log", "a") as f:  # survives the module being unloaded
        f.write("x")
    with open("count.log") as f:
        return {"n": len(f.read())}
def boom(dev, args):
    return 1 // 0
"""


@pytest.fixture
def dev(tmp_path):
    cwd = os.getcwd()
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "testmods").mkdir()
    (mods / "testmods" / "cmds.py").write_text(TEST_COMMANDS)
    sys.path.insert(0, str(mods))
    d = Device(MemHal(str(tmp_path / "flash")))
    d.boot()
    d.commands = dict(d.commands, count="testmods.cmds", boom="testmods.cmds")  # a dotted name: not one of requests/ (the firmware's table is shared)
    yield d
    sys.path.remove(str(mods))
    os.chdir(cwd)


def exchange(dev: Device, wire: bytes) -> list[framing.Frame]:
    dev.hal.rx += wire
    dev.poll_link()
    out = bytes(dev.hal.tx)
    dev.hal.tx.clear()
    return [framing.decode(f) for f in out.split(b"\x00") if f]


def ask(dev: Device, cmd: str, req_id: int = 7, **args) -> framing.Frame:
    body = json.dumps({"cmd": cmd, "args": args}).encode()
    (frame,) = exchange(dev, framing.encode(framing.REQUEST, req_id, body))
    return frame


def test_first_boot_provisions_identity_without_reset_alarm(dev):
    hello = json.loads(ask(dev, "hello").body)
    assert hello["serial"] == "ITB-DEADBEEF" and hello["protocol"] == 1
    assert hello["medical_device"] is False
    assert dev.fsm.state == "stopped"
    assert dev.alarms.active == {}


def test_later_boot_raises_reset_recovered_and_keeps_serial(tmp_path):
    cwd = os.getcwd()
    try:
        Device(MemHal(str(tmp_path / "f"))).boot()
        d2 = Device(MemHal(str(tmp_path / "f")))
        d2.boot()
        d2.hal.tx.clear()
        assert list(d2.alarms.active) == ["reset_recovered"]
        assert json.loads(ask(d2, "hello").body)["serial"] == "ITB-DEADBEEF"
    finally:
        os.chdir(cwd)


def test_status_fields(dev):
    s = json.loads(ask(dev, "status").body)
    assert s["state"] == "stopped" and s["mode"] == "stopped"
    assert s["reservoir_capacity_nl"] == 20_000_000
    for key in ("daily_dose_mcg", "rate_nl_per_day", "concentration_mcg_per_ml", "reservoir_nl", "alarms",
                "alarm_date", "refill_date", "clock", "firmware_version"):
        assert key in s


def reference_status(dev: Device) -> dict:
    """What status says, from the device's state (the dict the template replaced)."""
    import requests.info as cmd_info
    from alarms.listing import alarm_list
    from therapy.units import STROKE_NL

    th, a, d = dev.therapy, dev.alarms.active, dev.alarms.dates
    out = dev.summary()
    out.update(reservoir_nl=th.reservoir_nl, reservoir_capacity_nl=dev.hal.capacity_ml * 1_000_000,
               alarms=alarm_list(dev.alarms, dev),
               alarm_date=a["low_reservoir"][0] if "low_reservoir" in a else d[0],
               refill_date=a["empty_reservoir"][0] if "empty_reservoir" in a else d[1],
               clock=th.now_s(), utc_offset_min=th.offset_min, firmware_version="0.2.0", serial=dev.identity(),
               therapy={"strokes": th.strokes, "delivered_nl": (th.strokes - th.prime_strokes) * STROKE_NL,
                        "primed_nl": th.prime_strokes * STROKE_NL, "filled_nl": th.filled_nl,
                        "since_refill_nl": (th.strokes - th.fill_strokes) * STROKE_NL, **cmd_info._detail(th)})
    return out


def test_status_answer_is_the_state_as_json(dev):
    """status writes its answer from a template (requests/info.py): the same JSON as the state says,
    with nulls, negative numbers, alarms and the therapy's optional parts."""
    assert json.loads(ask(dev, "status").body) == reference_status(dev)
    th = dev.therapy
    th.offset_min, th.conc, th.strokes, th.prime_strokes, th.fill_strokes = -330, 500, 1234, 20, 100
    dev.alarms.active["low_reservoir"] = (812_345_678, False)
    dev.alarms.active["motor_stall"] = (812_000_000, True)
    dev.alarms.dates[1] = 813_000_000
    th.priming, th.prime_volume = 3, 1_500_000
    th.bridge_left, th.bridge_conc = 40_000, 250
    dev.ident = None
    s = json.loads(ask(dev, "status").body)
    assert s == reference_status(dev)
    assert s["serial"] is None and s["utc_offset_min"] == -330 and s["alarm_date"] == 812_345_678
    assert set(s["therapy"]) >= {"priming", "bridge", "strokes"} and len(s["alarms"]) == 2


@pytest.mark.parametrize("acked", [False, True])
def test_status_with_one_alarm_says_it_as_the_list_does(dev, acked):
    """One alarm (status writes it from its own template) or a stall (with its restarts), each
    acknowledged or not: the same JSON as alarm_list."""
    from alarms.catalogue import PRIORITY

    for code in PRIORITY:
        dev.alarms.active.clear()
        dev.alarms.active[code] = (812_345_678, acked)
        s = json.loads(ask(dev, "status").body)
        assert s["alarms"] == reference_status(dev)["alarms"] and len(s["alarms"]) == 1, code


def test_status_lists_a_standing_alarm_as_it_changes(dev):
    """status keeps the last single alarm's text (alarms/listing.py) for the polls while it stands:
    an acknowledgement, a new time or another alarm each gives the new text, never the kept one."""
    steps = [("low_reservoir", 812_000_000, False), ("low_reservoir", 812_000_000, False),
             ("low_reservoir", 812_000_000, True), ("low_reservoir", 812_000_600, True),
             ("empty_reservoir", 812_000_600, True), ("low_reservoir", 812_000_000, False)]
    entry = None
    for code, since, acked in steps:
        if entry is not None and code in dev.alarms.active:
            entry[0], entry[1] = since, acked  # changed in place, as catalogue.py acknowledges
        else:
            dev.alarms.active.clear()
            entry = dev.alarms.active[code] = [since, acked]
        s = json.loads(ask(dev, "status").body)
        assert s["alarms"] == [{"code": code, "priority": s["alarms"][0]["priority"], "since": since,
                                "acknowledged": acked}] == reference_status(dev)["alarms"], (code, since, acked)


def test_status_keys_begin_with_the_summary(dev):
    """The summary's fields (every programming answer's) are status's first five, by the same names."""
    import requests.info as cmd_info

    sample = bytes(cmd_info._STATUS).replace(b"\x01\x02", b"0").replace(b"\x01", b"0").replace(b"\x02", b"null")
    assert list(json.loads(sample))[:5] == list(dev.summary())


@pytest.mark.parametrize("body,code,words", [
    (b"not json", errors.BAD_REQUEST, "not JSON"),
    (b"[1,2]", errors.BAD_REQUEST, "'cmd'"),
    (b'{"cmd":"status","args":[1]}', errors.BAD_REQUEST, "'args'"),
    (b'{"cmd":"launch"}', errors.UNKNOWN_COMMAND, "unknown command 'launch'"),
])
def test_bad_requests_get_error_frames_naming_the_problem(dev, body, code, words):
    (f,) = exchange(dev, framing.encode(framing.REQUEST, 11, body))
    err = json.loads(f.body)
    assert f.kind == framing.ERROR and f.req_id == 11
    assert err["code"] == code and err["error"] == errors.NAMES[code] and words in err["text"]


def test_other_protocol_version_is_refused_in_version_1(dev):
    (f,) = exchange(dev, framing.encode(framing.REQUEST, 3, b'{"cmd":"status"}', version=2))
    assert f.version == 1 and f.kind == framing.ERROR
    err = json.loads(f.body)
    assert err["error"] == "unsupported_version" and "version 2" in err["text"]


def test_non_request_kind_is_refused(dev):
    (f,) = exchange(dev, framing.encode(framing.RESPONSE, 3, b"{}"))
    assert json.loads(f.body)["error"] == "bad_kind"


def test_damaged_frame_gets_link_error_with_id_zero(dev):
    wire = bytearray(framing.encode(framing.REQUEST, 12, b'{"cmd":"status"}'))
    wire[5] ^= 0x40
    (f,) = exchange(dev, bytes(wire))
    assert f.req_id == 0 and json.loads(f.body)["error"] in ("bad_crc", "bad_frame")


def test_retry_with_same_id_and_bytes_gets_the_cached_answer(dev):
    wire = framing.encode(framing.REQUEST, 42, b'{"cmd":"count"}')
    first = exchange(dev, wire)
    again = exchange(dev, wire)
    assert first == again and json.loads(first[0].body) == {"n": 1}
    # same id, different request: a new request, executed
    (third,) = exchange(dev, framing.encode(framing.REQUEST, 42, b'{"cmd":"count","args":{}}'))
    assert json.loads(third.body) == {"n": 2}


def test_request_modules_are_unloaded_after_the_request(dev):
    sys.modules.pop("requests.info", None)
    ask(dev, "status")
    assert "requests.info" not in sys.modules and "testmods.cmds" not in sys.modules
    ask(dev, "count")
    assert "testmods.cmds" not in sys.modules and "testmods" not in sys.modules


def test_a_module_loaded_for_a_call_is_dropped_from_its_resident_package_too(dev):
    """An import binds a submodule on its package: therapy (resident, the engine's package) would
    keep therapy.schedule alive after the call if only sys.modules forgot it."""
    import therapy

    sys.modules.pop("therapy.schedule", None)  # as the device has it: not loaded (another test may have)
    vars(therapy).pop("schedule", None)
    assert dev.call("therapy.schedule", "current")[0] == "s"  # the stopped pump's prescription
    assert "therapy.schedule" not in sys.modules and not hasattr(therapy, "schedule")
    import requests  # the request modules' package (here a CPython package), kept loaded

    sys.modules.pop("requests.info", None)
    vars(requests).pop("info", None)
    ask(dev, "status")
    assert "requests.info" not in sys.modules and not hasattr(requests, "info")


def test_a_crashing_command_is_an_internal_error_not_a_crash(dev):
    err = json.loads(ask(dev, "boom").body)
    assert err["error"] == "internal" and "ZeroDivisionError" in err["text"]
    assert json.loads(ask(dev, "status", req_id=8).body)["state"] == "stopped"


def test_alarm_raise_sends_unsolicited_frame(dev):
    dev.alarms.raise_alarm("low_reservoir")
    (f,) = exchange(dev, b"")
    assert f.kind == framing.ALARM and f.req_id == 0
    body = json.loads(f.body)
    assert body == {"event": "raised", "code": "low_reservoir", "priority": "non_critical", "since": dev.hal.rtc}


def test_frequent_reads_stay_loaded_when_the_heap_has_room(tmp_path, monkeypatch):
    """A Pico's 240 KB heap keeps requests.info (hello, status, diag) loaded from boot: no load from
    flash per request (bench/rp2040.py); a budget-size heap loads it per request (above)."""
    import gc

    monkeypatch.setattr(gc, "mem_free", lambda: 200_000, raising=False)
    monkeypatch.setattr(gc, "mem_alloc", lambda: 20_000, raising=False)
    cwd = os.getcwd()
    sys.modules.pop("requests.info", None)
    try:
        d = Device(MemHal(str(tmp_path / "flash")))
        d.boot()
        assert d.resident == ("requests.info",) and "requests.info" in sys.modules
        loaded = sys.modules["requests.info"]
        assert json.loads(ask(d, "status").body)["state"] == "stopped"
        assert sys.modules.get("requests.info") is loaded  # the same module: not loaded again
    finally:
        sys.modules.pop("requests.info", None)
        os.chdir(cwd)


def test_resident_reads_give_way_to_a_load_that_leaves_too_little_of_the_heap_budget(tmp_path, monkeypatch):
    """A Pico keeps requests.info loaded (no load from flash per status), but a load that leaves its call
    less than _CALL_ROOM of the 64 KB budget (a programming request's) runs without it; the next
    read loads it again, once, and keeps it (docs/architecture.md, "Memory")."""
    import gc

    from core import device

    live = [20_000]  # the live heap the device sees once a module is loaded
    monkeypatch.setattr(gc, "mem_free", lambda: 200_000, raising=False)
    monkeypatch.setattr(gc, "mem_alloc", lambda: live[0], raising=False)
    seen = []
    probe = type(sys)("probes.look")
    probe.look = lambda dev, args: seen.append("requests.info" in sys.modules) or {}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "probes", type(sys)("probes"))
    monkeypatch.setitem(sys.modules, "probes.look", probe)
    monkeypatch.chdir(os.getcwd())
    for name in ("requests.info", "alarms.listing"):  # as after a power-up: what it brings comes with it
        monkeypatch.delitem(sys.modules, name, raising=False)
    dev = Device(MemHal(str(tmp_path / "flash")))
    dev.boot()  # a Pico-size heap: requests.info resident
    dev.commands = dict(dev.commands, look="probes.look")  # (the firmware's table is shared)
    first = sys.modules["requests.info"]
    ask(dev, "look")  # room for the largest load beside it: it stays
    assert seen == [True] and sys.modules.get("requests.info") is first
    live[0] = device._HEAP_BUDGET - device._CALL_ROOM + 1
    ask(dev, "look", req_id=8)
    assert seen == [True, False] and "requests.info" not in sys.modules and "alarms.listing" not in sys.modules
    assert json.loads(ask(dev, "status").body)["state"] == "stopped"  # loaded again for the read
    again = sys.modules["requests.info"]
    assert again is not first
    ask(dev, "hello")
    assert sys.modules.get("requests.info") is again  # and kept


def test_a_repeated_short_read_is_answered_without_parsing_it_again(dev, monkeypatch):
    from core import device

    from types import SimpleNamespace

    parsed = []  # the bodies the device parses (its own json, not the test's)
    monkeypatch.setattr(device, "json", SimpleNamespace(
        loads=lambda b: parsed.append(bytes(b)) or json.loads(b), dumps=json.dumps))
    status = b'{"cmd":"status"}'
    answers = [exchange(dev, framing.encode(framing.REQUEST, i, status))[0] for i in (1, 2, 3)]
    assert parsed == [status]  # parsed once, then the kept dict
    assert [f.req_id for f in answers] == [1, 2, 3] and all(f.kind == framing.RESPONSE for f in answers)
    assert json.loads(answers[2].body)["state"] == "stopped"
    # any other body is parsed: another command, bad JSON, args, then the read again
    (h,) = exchange(dev, framing.encode(framing.REQUEST, 4, b'{"cmd":"hello"}'))
    assert json.loads(h.body)["serial"] == "ITB-DEADBEEF"
    (bad,) = exchange(dev, framing.encode(framing.REQUEST, 5, b'{"cmd":"status"'))
    assert "not JSON" in json.loads(bad.body)["text"]
    (d,) = exchange(dev, framing.encode(framing.REQUEST, 6, b'{"cmd":"log","args":{"last":1}}'))
    assert d.kind == framing.RESPONSE and "entries" in json.loads(d.body)
    (s,) = exchange(dev, framing.encode(framing.REQUEST, 7, status))
    assert json.loads(s.body)["state"] == "stopped"
    assert parsed[1:] == [b'{"cmd":"hello"}', b'{"cmd":"status"', b'{"cmd":"log","args":{"last":1}}', status]


def test_only_short_reads_without_args_are_kept_parsed(dev):
    long_status = b'{"cmd":"status",' + b" " * 40 + b'"args":{}}'
    (f,) = exchange(dev, framing.encode(framing.REQUEST, 1, long_status))
    assert f.kind == framing.RESPONSE and dev._last[0] is None  # a long body is never held
    for body in (b'{"cmd":"count"}', b'{"cmd":"alarms"}', b'{"cmd":"log","args":{"last":1}}', b"[1]"):
        exchange(dev, framing.encode(framing.REQUEST, 2, body))
        assert dev._last[0] is None, body  # kept answers, signed requests, args, errors: parsed each time
    # a retry of a kept request still gets its kept answer, not a new run
    wire = framing.encode(framing.REQUEST, 9, b'{"cmd":"count"}')
    assert exchange(dev, wire) == exchange(dev, wire)
    (s,) = exchange(dev, framing.encode(framing.REQUEST, 3, b'{"cmd":"log"}'))
    assert s.kind == framing.RESPONSE and dev._last[0] == b'{"cmd":"log"}'
