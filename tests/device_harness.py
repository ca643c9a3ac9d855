"""The CPython device harness the device-level tests share (fields, two-phase, auth, limits, alarms).

A firmware Device on the in-memory HAL, driven as the Pico's main loop drives it, with the
speed-ups that make thousands of requests affordable under CPython. One copy, so that a change
to how the harness runs the device reaches every test that uses it.
"""

from __future__ import annotations

import gc
import importlib
import importlib.machinery
import importlib.util
import os
import sys

from core.device import Device, drop
from device_session import DeviceSession, provision
from memhal import MemHal


# -- speed-ups (conftest.py's fast_calls fixture) ------------------------------------------------
def fast_call(dev, module, fn, *args):
    """Device.call without its gc.collect() and sys.modules scans (slow under CPython's large heap)."""
    fresh = module not in sys.modules
    try:
        return getattr(importlib.import_module(module), fn)(dev, *args)
    finally:
        if fresh:
            drop(module)


FIRMWARE = os.path.dirname(os.path.dirname(importlib.util.find_spec("core.device").origin))


class _CompiledOnce(importlib.machinery.SourceFileLoader):
    """A firmware module's code compiled once (again only when its file changes)."""

    codes: dict[tuple[str, int, int], object] = {}

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        if key not in self.codes:
            self.codes[key] = super().get_code(fullname)
        return self.codes[key]


class FirmwareFinder:
    """Device.call imports a firmware module afresh for each call, as on the Pico; without .pyc
    files (PYTHONDONTWRITEBYTECODE) every import would search sys.path and compile again. First
    on sys.meta_path, this finds firmware modules and packages in firmware/ and compiles each once."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        base = os.path.join(FIRMWARE, *name.split("."))
        package = os.path.join(base, "__init__.py")
        if os.path.isfile(package):
            return importlib.util.spec_from_file_location(name, package, loader=_CompiledOnce(name, package),
                                                          submodule_search_locations=[base])
        file = base + ".py"
        if not os.path.isfile(file):
            return None
        return importlib.util.spec_from_file_location(name, file, loader=_CompiledOnce(name, file))


def use_fast_calls(monkeypatch) -> None:
    """Patch, for one test: Device.call, firmware imports, and diag's MicroPython-only gc calls."""
    monkeypatch.setattr(gc, "mem_free", lambda: 0, raising=False)
    monkeypatch.setattr(gc, "mem_alloc", lambda: 0, raising=False)
    monkeypatch.setattr(Device, "call", fast_call)
    monkeypatch.setattr(sys, "meta_path", [FirmwareFinder, *sys.meta_path])


# -- the device ------------------------------------------------------------------------------------
class ClockHal(MemHal):
    """MemHal whose RTC moves with its tick counter: alarm times and the 24 h window are virtual times."""

    def __init__(self, flash_dir: str, **kwargs):
        super().__init__(flash_dir, **kwargs)
        self.ms0 = self.ms

    def rtc_seconds(self):
        return self.rtc + (self.ms - self.ms0) // 1000

    def rtc_set(self, s):
        self.rtc, self.ms0 = s, self.ms


def boot(flash_dir: str, rtc: int | None = None, hal_type: type = MemHal) -> Device:
    """A device on this flash (the HAL works inside flash_dir from now on); rtc: the RTC's time
    at boot (a power cut that kept the clock)."""
    hal = hal_type(flash_dir)
    if rtc is not None:
        hal.rtc = rtc
    dev = Device(hal)
    dev.boot()
    return dev


def run_ms(dev: Device, ms: int) -> None:
    """Let ms pass as app.run does: sleep to the next deadline, serve what is due."""
    hal = dev.hal
    end = hal.ms + ms
    while True:
        wait = max(0, hal.ticks_diff(dev.next_deadline(), hal.ticks_ms()))
        if hal.ms + wait > end:
            hal.ms = end
            dev.service()
            return
        hal.ms += wait
        dev.service()


def advance(dev: Device, seconds: int) -> None:
    """Let device time pass as the main loop does (deadline by deadline); then engine time up to
    now, as a request brings it."""
    run_ms(dev, seconds * 1000)
    dev.sync()


# -- a programmer ------------------------------------------------------------------------------------
def change(s: DeviceSession, cmd: str, **args) -> dict:
    """Prepare and commit; the commit's answer, with the review under "review"."""
    good, rv = s.request(cmd, **args)
    assert good, rv
    good, out = s.request("commit", token=rv["token"])
    assert good, out
    out["review"] = rv
    return out


def log(s: DeviceSession, last: int = 100) -> list[dict]:
    """The event log's last entries (an open read: no session needed)."""
    good, out = s.request("log", last=last)
    assert good, out
    return out["entries"]


def events(s: DeviceSession, after: int, last: int = 100) -> list[tuple[str, str]]:
    """(event, sentence as `itbpump log` shows it) of the entries logged after sequence number `after`."""
    from host_tools.log_events import sentence

    return [(e["event"], sentence(e)) for e in log(s, last) if e["seq"] > after]


class Pump:
    """A booted device with its keys and a programmer session that never adds an override by itself."""

    hal_type: type = MemHal

    def __init__(self, flash_dir: str):
        self.flash_dir = flash_dir
        self.dev = boot(flash_dir, hal_type=self.hal_type)
        provision(flash_dir)
        self.s = DeviceSession(self.dev, override=None)

    @property
    def hal(self):
        return self.dev.hal

    def send(self, cmd: str, **args) -> tuple[bool, dict]:
        """One request (a prepare for two-phase ones), authenticated as the role it needs."""
        return self.s.request(cmd, **args)

    def change(self, cmd: str, **args) -> dict:
        return change(self.s, cmd, **args)

    def advance(self, seconds: int) -> None:
        advance(self.dev, seconds)

    def log(self, last: int = 50) -> list[dict]:
        return log(self.s, last)

    def events(self, after: int, last: int = 100) -> list[tuple[str, str]]:
        return events(self.s, after, last)
