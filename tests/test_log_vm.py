"""The event log on MicroPython: the `log` request on the virtual Pico (empty, and a full ring
in a 64 KB heap), itbpump log, and evlog.py itself run by the MicroPython VM."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from storage import event_log as evlog
from requests import log as log_cmd
import pytest
from memhal import MemHal

from host_tools.client import PumpClient
from host_tools.errors import DeviceRefused
from host_tools.units import device_time

ROOT = Path(__file__).resolve().parents[1]
ITBPUMP = str(Path(sys.executable).parent / "itbpump")
MICROPYTHON = str(Path(sys.executable).parent / "micropython")
T0 = 800_000_000  # device seconds
TEXT_1099 = "therapy changed from continuous 1099 mcg/day to continuous 1100 mcg/day (daily dose)"


class FakeDev:
    """What evlog needs of a Device: the HAL's flash, the engine's clock and the log's place."""

    def __init__(self, hal):
        self.hal = hal
        self.therapy = self
        self.storage = self  # (evlog keeps log_seq there)
        self.t = T0

    def now_s(self):
        return self.t


def write_log(flash_dir: Path, n: int) -> None:
    """n entries written by evlog under CPython into a (stopped) virtual Pico's flash."""
    cwd = os.getcwd()
    try:
        dev = FakeDev(MemHal(str(flash_dir)))
        for i in range(n):
            dev.t = T0 + 60 * i
            evlog.append(dev, "program", (1440 * i, 1440 * (i + 1)), "continuous continuous")  # one slot each
    finally:
        os.chdir(cwd)


def itbpump(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ITBPUMP, *args], capture_output=True, text=True, timeout=60)


def test_log_request_on_an_empty_log(vpico_port):
    with PumpClient(vpico_port) as c:
        assert c.log() == {"entries": [], "bad": 0, "capacity": 1024, "utc_offset_min": 0}
        assert c.request("log", last=5) == {"entries": [], "bad": 0, "capacity": 1024, "truncated": False,
                                            "utc_offset_min": 0}
        with pytest.raises(DeviceRefused) as e:
            c.request("log", last=1001)
        assert e.value.name == "bad_argument" and "1..1000" in e.value.text
    r = itbpump("--port", vpico_port, "log")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines() == [r.stdout.splitlines()[0], "event log: no entries"]
    assert r.stdout.startswith("virtual Pico")
    r = itbpump("--port", vpico_port, "--json", "log", "--last", "3")
    assert json.loads(r.stdout) == {"entries": [], "bad": 0, "capacity": 1024, "utc_offset": "+00:00"}
    r = itbpump("--port", vpico_port, "log", "--last", "0")
    assert r.returncode == 2 and "1..1024" in r.stderr


SIM_READINTO = "def flash_readinto" in (ROOT / "firmware" / "hal" / "sim.py").read_text()


@pytest.mark.parametrize("heap", [
    "192K",
    # the small-heap budget of test_vpico_link: 64 KB for the firmware + 8 KB for the sim HAL
    pytest.param("88K", marks=pytest.mark.skipif(
        not SIM_READINTO, reason="the sim HAL has no flash_readinto: evlog reads whole 4 KB files, "
                                 "too much for a 64 KB firmware heap")),
])
def test_a_full_ring_pages_on_the_virtual_pico(tmp_path, heap):
    """1100 entries (the ring wrapped), read a page at a time."""
    from hil.vpico.control import SimControl

    ctl = SimControl(tmp_path / "sim")
    ctl.start(clock="manual", fresh=True, heap=heap)
    ctl.stop()
    write_log(ctl.paths.flash, 1100)
    port = ctl.start(clock="manual", heap=heap)["port"]
    try:
        with PumpClient(port) as c:
            got = c.log(last=200)
            seqs = [e["seq"] for e in got["entries"]]
            newest = seqs[-1]  # 1099, or later: the firmware may log its own entries at boot (a reset)
            assert newest >= 1099 and seqs == list(range(newest - 199, newest + 1))
            assert got["bad"] == 0 and got["capacity"] == 1024
            assert got["entries"][seqs.index(1099)] == {"seq": 1099, "time": T0 + 60 * 1099, "event": "program",
                                                        "n": [1440 * 1099, 1440 * 1100],
                                                        "codes": ["continuous", "continuous"]}
            assert [e["seq"] for e in c.log(last=1024)["entries"]] == list(range(newest - 1023, newest + 1))
            assert c.diag()["mem_free"] > 4 * 1024
        r = itbpump("--port", port, "log", "--last", str(newest - 1099 + 2))
        assert r.returncode == 0, r.stderr
        banner, title, *lines = r.stdout.splitlines()
        assert banner.startswith("virtual Pico") and title.startswith("event log") and len(lines) == newest - 1099 + 2
        assert lines[1].split(None, 3) == [*device_time(T0 + 60 * 1099)[:16].split("T"), "program", TEXT_1099]
        assert ctl.info()["boots"] == 1  # never ran out of memory and reset
    finally:
        ctl.stop()


MPY_SCRIPT = """
import sys, json
sys.path.insert(0, sys.argv[1])
from storage import event_log as evlog
from requests import log as log_cmd

from hal import flashfs

class Hal:
    def flash_read(self, name):
        return flashfs.read(name)
    def flash_write(self, name, data, offset=-1):
        flashfs.write(name, data, offset)

class ReadintoHal(Hal):
    def flash_readinto(self, name, offset, buf):
        return flashfs.readinto(name, offset, buf)

class Dev:
    def __init__(self):
        self.hal = ReadintoHal() if sys.argv[2] == "readinto" else Hal()
        self.therapy = self
        self.storage = self
    def now_s(self):
        return 800000000

d = Dev()
for i in range(1030):
    evlog.append(d, "ev%d" % (i % 3), text="entry %d" % i)
evlog.append(d, "a_very_long_event_code", text="\\u00e9" * 30)
d2 = Dev()  # a reboot: seq found by a scan
evlog.append(d2, "reset", text="x" * 50)
evlog.append(d2, "override", (432000, -1), "initial_cap ceiling", "\u00e9" * 100)
print(json.dumps(log_cmd.read(d2, 5, 1034)))
print(json.dumps(log_cmd.read(d2, 1000, 1000, 400)))
print(json.dumps(log_cmd.read(d2, 1)[0][0]))
"""


@pytest.mark.parametrize("read", ["readinto", "whole-file"])
def test_evlog_runs_on_micropython_and_reads_the_same_under_cpython(tmp_path, read):
    flash = tmp_path / "flash"
    flash.mkdir()
    script = tmp_path / "evlog_mpy.py"
    script.write_text(MPY_SCRIPT)
    r = subprocess.run([MICROPYTHON, "-X", "heapsize=64K", str(script), str(ROOT / "firmware"), read],
                       cwd=flash, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    last5, page, record = [json.loads(line) for line in r.stdout.splitlines()]
    entries, bad, truncated = last5
    assert (bad, truncated) == (0, False)
    assert [(e["seq"], e["event"], e["text"]) for e in entries] == [
        (1027, "ev1", "entry 1027"), (1028, "ev2", "entry 1028"), (1029, "ev0", "entry 1029"),
        (1030, "a_very_long_", "\u00e9" * 30), (1032, "reset", "x" * 50)]  # whole: two slots each
    assert record == {"seq": 1034, "time": 800000000, "event": "override", "n": [432000, -1],
                      "codes": ["initial_cap", "ceiling"], "text": "\u00e9" * 100}  # 5 slots
    entries, bad, truncated = page
    assert truncated and entries[-1]["seq"] == 999 and bad == 0
    cwd = os.getcwd()
    try:
        dev = FakeDev(MemHal(str(flash)))  # the same files, read by CPython
        assert list(log_cmd.read(dev, 5, 1034)) == last5 and log_cmd.read(dev, 1)[0][0] == record
    finally:
        os.chdir(cwd)


def test_an_override_reason_is_whole_in_one_log_entry(vpico_port):
    """Issue 11 item 2: the clinician's reason (200 characters) is one entry, in text and JSON."""
    reason = ("transfer from another pump: stable at 300 mcg/day there for two years, documented in the "
              "referral letter; titration history reviewed with the patient and the carer; plan agreed with them "
              "and our GP.")[:200] + ".."
    assert len(reason) == 200
    at = ("--port", vpico_port)
    assert itbpump(*at, "refill", "--removed", "0", "--added", "20", "--concentration", "500", "--yes").returncode == 0
    r = itbpump(*at, "program", "continuous", "--dose", "300", "--override", reason, "--yes")
    assert r.returncode == 0, r.stderr
    r = itbpump(*at, "log")
    holding = [line for line in r.stdout.splitlines() if reason in line]
    assert len(holding) == 1, r.stdout
    assert re.search(r"  override +the initial-dose cap at 300 mcg/day; reason: " + re.escape(reason) + "$",
                     holding[0]), holding
    entries = json.loads(itbpump(*at, "--json", "log").stdout)["entries"]
    assert [e["event"] for e in entries if reason in e["text"]] == ["override"]
    assert "reason" not in [e["event"] for e in entries]  # no more pieces of it in entries of their own
