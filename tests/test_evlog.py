"""The event log (firmware/storage/event_log.py, log_cmd.py) under CPython with the in-memory HAL."""

from __future__ import annotations

import json
import os
import struct
import zlib

from storage import event_log as evlog
import pytest
from core.device import Device
from memhal import MemHal, PowerCut

from host_tools import framing


class WholeFileHal(MemHal):
    """A HAL without flash_readinto: evlog reads whole files instead."""

    flash_readinto = None


def new_device(flash: str, hal: type = MemHal) -> Device:
    """A Device on this flash: a new one on the same flash is a reboot, as far as the log goes.
    Not booted: boot writes entries of its own (resets), which these tests do not count."""
    return Device(hal(flash))


def log_n(dev: Device, n: int, start: int = 0) -> None:
    for i in range(start, start + n):  # straight in: Device.call's gc.collect() is slow under CPython
        evlog.append(dev, "ev%d" % (i % 7), text="entry %d" % i)


def read(dev: Device, last: int, before: int = -1, room: int = 0):
    return dev.call("requests.log", "read", last, before, room)


def ask(dev: Device, req_id: int = 9, **args) -> tuple[int, dict]:
    dev.hal.rx += framing.encode(framing.REQUEST, req_id, json.dumps({"cmd": "log", "args": args}).encode())
    dev.poll_link()
    (raw,) = [f for f in bytes(dev.hal.tx).split(b"\x00") if f]
    dev.hal.tx.clear()
    frame = framing.decode(raw)
    return frame.kind, json.loads(frame.body)


def test_entries_in_order_with_time_event_text(flash):
    d = new_device(flash)
    t0 = d.therapy.now_s()
    log_n(d, 3)
    d.therapy.idle(100)  # 10 s
    d.call("storage.event_log", "append", "refill", (), "", "20 mL at 500 mcg/mL")
    entries, bad, truncated = read(d, 50)
    assert (bad, truncated) == (0, False)
    assert [e["seq"] for e in entries] == [0, 1, 2, 3]
    assert entries[0] == {"seq": 0, "time": t0, "event": "ev0", "text": "entry 0"}
    assert entries[3] == {"seq": 3, "time": t0 + 10, "event": "refill", "text": "20 mL at 500 mcg/mL"}
    assert [e["seq"] for e in read(d, 2)[0]] == [2, 3]  # the last N, oldest first


def test_one_flash_write_per_entry_in_place(flash):
    d = new_device(flash)
    log_n(d, 1)  # the scan after boot reads, never writes
    before = d.hal.flash_writes
    log_n(d, 40)
    assert d.hal.flash_writes - before == 40
    assert os.path.getsize("log00.bin") == 41 * 64 and not os.path.exists("log01.bin")
    log_n(d, 30)
    assert os.path.getsize("log00.bin") == 4096 and os.path.getsize("log01.bin") == 7 * 64


SLOTS = evlog.CAPACITY  # 6144


def test_ring_wraps_after_6144_slots(flash):
    d = new_device(flash)
    log_n(d, SLOTS + 100)
    files = sorted(f for f in os.listdir(".") if f.startswith("log"))
    assert len(files) == 96 and all(os.path.getsize(f) == 4096 for f in files)  # 384 KB, no more
    entries, bad, _ = read(d, 1000)
    assert bad == 0 and len(entries) == 1000
    assert [e["seq"] for e in entries] == list(range(SLOTS + 100 - 1000, SLOTS + 100))
    assert entries[-1]["text"] == "entry %d" % (SLOTS + 99)
    everything, bad, _ = read(d, 10000)
    assert [e["seq"] for e in everything] == list(range(100, SLOTS + 100))  # one slot each: 6144 kept


def test_1024_entries_with_the_longest_reasons_all_survive(flash):
    """Spec §6 (at least 1000 entries) whatever they hold: every entry an override of the limit with
    the longest name, with the longest reason the pump accepts (250 bytes, 200 characters), the
    ring wrapped: the newest 1024 are all there, each whole."""
    from safety.field_checks import REASON_BYTES

    d = new_device(flash)
    assert evlog.ENTRIES == 1024
    reasons = [("%04d " % i + "r" * 300)[:150] + "é" * 50 for i in range(1200)]
    assert all(len(r) == 200 and len(r.encode()) == REASON_BYTES for r in reasons)
    for i, r in enumerate(reasons):
        evlog.append(d, "override", (1440 * i,), "titration_window", r)
    entries, bad, _ = read(d, 5000)
    assert bad == 0 and len(entries) >= 1024
    assert [(e["n"], e["codes"], e["text"]) for e in entries[-1024:]] == [
        ([1440 * i], ["titration_window"], reasons[i]) for i in range(1200 - 1024, 1200)]
    assert d.hal.flash_writes >= 6 * 1200  # 6 slots each: the ring wrapped


def test_a_record_holds_integers_codes_and_the_reason(flash):
    d = new_device(flash)
    evlog.append(d, "refill", (4000000, -1, 20000000, 500, 0, 1))
    evlog.append(d, "program", (288000, 0), "continuous stopped", "withdrawal plan agreed")
    evlog.append(d, "alarm_test")
    entries, bad, _ = read(d, 10)
    assert [{k: v for k, v in e.items() if k != "time"} for e in entries] == [
        {"seq": 0, "event": "refill", "n": [4000000, -1, 20000000, 500, 0, 1]},
        {"seq": 1, "event": "program", "n": [288000, 0], "codes": ["continuous", "stopped"],
         "text": "withdrawal plan agreed"},
        {"seq": 3, "event": "alarm_test"}]  # the program took 2 slots: 51 bytes


def test_sequence_continues_after_reboot(flash):
    d = new_device(flash)
    log_n(d, 1030)
    d2 = new_device(flash)  # a reboot: same flash, seq found again by a scan
    assert getattr(d2, "log_seq", None) is None
    d2.call("storage.event_log", "append", "reset", (), "", "after reboot")
    assert d2.storage.log_seq == 1030
    entries, bad, _ = read(d2, 3)
    assert [(e["seq"], e["event"]) for e in entries] == [(1028, "ev6"), (1029, "ev0"), (1030, "reset")]
    assert bad == 0


def test_a_long_text_is_whole_in_one_entry_and_the_event_code_is_cut(flash):
    d = new_device(flash)
    before = d.hal.flash_writes
    d.call("storage.event_log", "append", "a_very_long_event_code", (), "", "x" * 100)  # 40 + 52 + 8 bytes: 3 slots
    assert d.hal.flash_writes - before == 3 and d.storage.log_seq == 2
    d.call("storage.event_log", "append", "program", (), "", "é" * 30)  # 60 bytes of UTF-8, split inside a character
    d.call("storage.event_log", "append", "override", (), "", "reason: " + "r" * 200)
    d.call("storage.event_log", "append", "huge", (), "", "y" * 500)  # cut to 40 + 5 x 52 = 300 bytes of record
    entries, bad, _ = read(d, 4)
    assert bad == 0 and [e["seq"] for e in entries] == [0, 3, 5, 10]
    a, b, c, h = entries
    assert a["event"] == "a_very_long_" and a["text"] == "x" * 100
    assert b["text"] == "é" * 30 and c["text"] == "reason: " + "r" * 200
    assert h["text"] == "y" * 297 and d.storage.log_seq == 15  # 300 bytes less the record's 3
    d.call("storage.event_log", "append", "next", (), "", "one")
    assert [e["seq"] for e in read(d, 2)[0]] == [10, 16]


def test_a_power_cut_inside_a_long_entry_leaves_none_of_it(flash):
    d = new_device(flash)
    log_n(d, 3)
    d.hal.cut_write = d.hal.flash_writes + 2  # its last continuation written, the next one torn
    with pytest.raises(PowerCut):
        d.call("storage.event_log", "append", "override", (), "", "z" * 150)  # slots 3..6: 6, 5 (torn), 4, then 3
    d2 = new_device(flash)
    entries, bad, _ = read(d2, 50)
    assert [e["seq"] for e in entries] == [0, 1, 2] and all("z" not in e["text"] for e in entries)
    d2.call("storage.event_log", "append", "reset", (), "", "power back")  # after the orphan slots
    entries, _, _ = read(d2, 50)
    assert [e["text"] for e in entries][-1] == "power back" and entries[-1]["seq"] == 7


def test_pages_split_between_long_entries_never_inside_one(flash):
    d = new_device(flash)
    for i in range(30):
        d.call("storage.event_log", "append", "ev", (), "", ("%02d" % i) * (10 + 20 * (i % 5)))
    seen, before = [], -1
    while True:
        entries, _, truncated = read(d, 1000, before, 800)
        seen = entries + seen
        if not truncated:
            break
        before = entries[0]["seq"]
    assert [e["text"] for e in seen] == [("%02d" % i) * (10 + 20 * (i % 5)) for i in range(30)]


def flip_byte(name: str, offset: int) -> None:
    with open(name, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x20]))


def test_crc_catches_a_corrupted_record_which_is_skipped_and_counted(flash):
    d = new_device(flash)
    log_n(d, 10)
    flip_byte("log00.bin", 4 * 64 + 25)  # a text byte of entry 4
    entries, bad, _ = read(d, 50)
    assert bad == 1
    assert [e["seq"] for e in entries] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    entries, bad, _ = read(d, 7)  # the last 7 valid entries: the bad one is passed over
    assert [e["seq"] for e in entries] == [2, 3, 5, 6, 7, 8, 9] and bad == 1
    # the record format as documented: CRC-32 of bytes 0..59, little-endian at 60
    rec = open("log00.bin", "rb").read()[64:128]
    assert struct.unpack("<I", rec[60:])[0] == zlib.crc32(rec[:60])
    assert struct.unpack("<II", rec[:8])[0] == 1 and rec[8:20].rstrip(b"\0") == b"ev1"


def test_a_record_torn_by_a_power_cut_is_skipped_and_the_rest_remain(flash):
    d = new_device(flash)
    log_n(d, SLOTS + 76)
    d.hal.cut_write = d.hal.flash_writes + 1
    with pytest.raises(PowerCut):
        d.call("storage.event_log", "append", "program", (), "", "torn")  # seq SLOTS + 76: half written over seq 76
    d2 = new_device(flash)  # power back
    entries, bad, _ = read(d2, 10000)
    assert bad == 1  # the old entry 76, half overwritten
    assert [e["seq"] for e in entries] == [s for s in range(77, SLOTS + 76)]
    d2.call("storage.event_log", "append", "reset", (), "", "power back")  # seq SLOTS + 76 again, over the torn record
    entries, bad, _ = read(d2, 10000)
    assert bad == 0 and entries[-1]["seq"] == SLOTS + 76 and entries[-1]["text"] == "power back"
    assert entries[0]["seq"] == 77 and len(entries) == SLOTS


def test_a_torn_first_write_leaves_an_empty_log(flash):
    d = new_device(flash)
    d.hal.cut_write = d.hal.flash_writes + 1
    with pytest.raises(PowerCut):
        d.call("storage.event_log", "append", "program", (), "", "torn")
    d2 = new_device(flash)
    assert read(d2, 50) == ([], 0, False)
    d2.call("storage.event_log", "append", "x", (), "", "y")
    assert [e["seq"] for e in read(d2, 50)[0]] == [0]


def test_device_log_never_raises(flash):
    d = new_device(flash)
    d.hal.cut_write = d.hal.flash_writes + 1
    d.log("program", (1440, 2880), "continuous continuous")  # the write fails: counted, delivery goes on
    assert d.storage.log_failures == 1
    d.hal.cut_write = 0
    d.log("program", (1440, 2880), "continuous continuous")
    assert d.storage.log_failures == 1 and len(read(d, 50)[0]) == 1


def test_room_limits_a_page_to_the_newest_entries(flash):
    d = new_device(flash)
    log_n(d, 30)
    entries, bad, truncated = read(d, 30, -1, 500)
    assert truncated and 0 < len(entries) < 30
    assert entries[-1]["seq"] == 29 and len(json.dumps(entries)) <= 500
    older, _, _ = read(d, 30, entries[0]["seq"])
    assert [e["seq"] for e in older + entries] == list(range(30))


def test_bad_entries_are_counted_once_across_pages(flash):
    d = new_device(flash)
    log_n(d, 60)
    for seq in (20, 21, 40):
        flip_byte("log%02d.bin" % (seq // 64), seq % 64 * 64 + 9)
    seen, bad, before = [], 0, -1
    while True:
        page, b, truncated = read(d, 100, before, 300)
        seen = page + seen
        bad += b
        if not truncated:
            break
        before = page[0]["seq"]
    assert [e["seq"] for e in seen] == [s for s in range(60) if s not in (20, 21, 40)]
    assert bad == 3


def test_log_request_pages_within_the_frame_limit(flash):
    d = new_device(flash)
    for i in range(300):
        evlog.append(d, "program", text="continuous %d -> %d mcg/day (x)" % (i, i + 1))
    kind, a = ask(d, last=200)
    assert kind == framing.RESPONSE
    assert a["capacity"] == 1024 and a["bad"] == 0 and a["truncated"] is True
    assert a["entries"][-1]["seq"] == 299 and 0 < len(a["entries"]) < 200
    assert len(json.dumps(a["entries"])) <= 800
    got = a["entries"]
    while a["truncated"]:
        kind, a = ask(d, req_id=10 + len(got), last=200 - len(got), before=got[0]["seq"])
        got = a["entries"] + got
    assert [e["seq"] for e in got] == list(range(100, 300))


def test_log_request_defaults_and_refusals(flash):
    d = new_device(flash)
    kind, a = ask(d)
    assert kind == framing.RESPONSE and a == {"entries": [], "bad": 0, "capacity": 1024, "truncated": False,
                                              "utc_offset_min": 0}
    log_n(d, 60)
    kind, a = ask(d, req_id=2)
    assert len(a["entries"]) + (1 if a["truncated"] else 0) <= 50
    for i, bad in enumerate(({"last": 0}, {"last": 1001}, {"last": "5"}, {"last": True}, {"before": -1})):
        kind, a = ask(d, req_id=20 + i, **bad)
        assert kind == framing.ERROR and a["error"] == "bad_argument", bad


def test_a_hal_without_readinto_reads_whole_files(flash, monkeypatch):
    monkeypatch.setattr(evlog.gc, "collect", lambda: 0)  # one per file read: slow under CPython
    d = new_device(flash, WholeFileHal)
    log_n(d, SLOTS + 76)
    flip_byte("log01.bin", 10 * 64 + 30)  # seq SLOTS + 64 + 10
    d2 = new_device(flash, WholeFileHal)
    entries, bad, _ = read(d2, 10000)
    assert bad == 1 and len(entries) == SLOTS - 1
    assert entries[0]["seq"] == 76 and entries[-1]["seq"] == SLOTS + 75
    assert SLOTS + 74 not in [e["seq"] for e in entries]
    assert evlog.append(d2, "x", text="y") == SLOTS + 76


def test_host_renders_one_line_per_entry_and_the_damaged_count():
    from host_tools import render

    raw = {"entries": [{"seq": 7, "time": 0, "event": "refill", "n": [0, -1, 20000000, 500, 0, 0]},
                       {"seq": 9, "time": 86400, "event": "program", "n": [0, 450000], "codes": ["stopped", "flex"]},
                       {"seq": 10, "time": 86400, "event": "override", "n": [432000], "codes": ["initial_cap"],
                        "text": "x"},
                       {"seq": 11, "time": 86460, "event": "prime", "n": [250000, 140000]},
                       {"seq": 12, "time": 86460, "event": "bolus", "n": [50, 1800, 500]},
                       {"seq": 13, "time": 86460, "event": "clock", "n": [86400, 90000]},
                       {"seq": 14, "time": 86460, "event": "utc_offset", "n": [0, -330]},
                       {"seq": 15, "time": 86460, "event": "program", "text": "stopped 0 mcg/day -> continuous 50"}],
           "bad": 1, "capacity": 1024, "utc_offset_min": 60}
    assert render.log_text(raw).splitlines() == [
        "event log, times in the pump's local time (UTC+01:00)",
        "2000-01-01 01:00  refill      removed 0.00 mL, added 20.00 mL of 500 mcg/mL",
        "2000-01-02 01:00  program     therapy changed from stopped to flex 312.5 mcg/day (daily dose)",
        "2000-01-02 01:00  override    the initial-dose cap at 300 mcg/day; reason: x",
        "2000-01-02 01:01  priming     catheter 0.25 mL + pump tubing 0.14 mL at 24 mL/day; therapy pauses until it "
        "is done",
        "2000-01-02 01:01  bolus       50 mcg (0.10 mL) over 30 min",
        "2000-01-02 01:01  clock set   from 2000-01-02 01:00 to 2000-01-02 02:00",
        "2000-01-02 01:01  UTC offset  UTC+00:00 -> UTC-05:30",
        "2000-01-02 01:01  program     stopped 0 mcg/day -> continuous 50",  # an entry of older firmware: its text
        "(1 damaged entry skipped: CRC check failed)",
    ]
    doc = render.log_json(raw)["entries"]
    assert doc[1] == {"seq": 9, "time": "2000-01-02T00:00:00Z", "event": "program", "codes": ["stopped", "flex"],
                      "text": "therapy changed from stopped to flex 312.5 mcg/day (daily dose)",
                      "old_mcg_per_day": 0.0, "new_mcg_per_day": 312.5}
    assert doc[0]["expected_ml"] is None and doc[0]["added_ml"] == 20.0 and doc[0]["concentration_mcg_per_ml"] == 500
    assert doc[2]["reason"] == "x" and doc[4]["over_s"] == 1800
    assert render.log_text({"entries": [], "bad": 0}) == "event log: no entries"


@pytest.mark.parametrize("written", [0, 1, 3, 4, 5, 9, 300])
def test_boot_resumes_from_the_saved_place_as_a_full_scan_would(flash, written):
    """A boot reads only the slots written since the last save (a full scan of 6144 slots takes
    seconds on a Pico); it finds what the full scan finds, across the ring's wrap and chunk edges."""
    d = new_device(flash)
    log_n(d, evlog.CAPACITY - 2)
    saved = d.storage.log_seq  # what the last saved state knew
    log_n(d, written, start=evlog.CAPACITY)
    d.call("storage.event_log", "append", "override", (1,), "decrease", "x" * 200)  # a long entry, over a chunk edge
    again = new_device(flash)
    assert evlog.resume(again, saved) == evlog.last_seq(new_device(flash)) == d.storage.log_seq
    assert evlog.resume(new_device(flash), None) == d.storage.log_seq  # no saved place: the whole ring


class CountingHal(MemHal):
    """Counts the chunk reads of the scan: each one is a file open on a Pico (~5 ms for a missing file)."""

    def __init__(self, flash_dir: str):
        super().__init__(flash_dir)
        self.reads = 0

    def flash_readinto(self, name, offset, buf):
        self.reads += 1
        return super().flash_readinto(name, offset, buf)


@pytest.mark.parametrize("entries", [0, 1, 63, 64, 65, 200])
def test_the_scan_reads_a_missing_file_once_and_finds_the_newest_entry(flash, entries):
    """A new pump (no log yet) or a short log: the scan opens a file that holds nothing once, not
    once per chunk (a new pump's first boot on an RP2040 spent ~7 s on 1536 misses), and finds
    the newest entry of the files that are there, as before."""
    log_n(new_device(flash), entries)
    d = new_device(flash, CountingHal)
    assert evlog.last_seq(d) == entries - 1
    files = -(-entries // evlog.PER_FILE)  # files with slots in them
    assert d.hal.reads == files * (evlog.PER_FILE // evlog.CHUNK) + (evlog.CAPACITY // evlog.PER_FILE - files)
