"""Shared fixtures: firmware importable under CPython, and virtual Picos for integration tests."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["hil.pytest_plugin"]  # --rig and the rig fixture (the HIL scenario library)

# The host key file (host_tools/keys.py) lives under $XDG_CONFIG_HOME: give this test process (and
# the virtual Picos it starts, which inherit the environment) its own, so no test reads or writes
# the user's real ~/.config/itbpump/keys.json. Set at import, before any KeyStore is made.
_CONFIG_HOME = tempfile.mkdtemp(prefix="itbpump-test-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG_HOME
atexit.register(shutil.rmtree, _CONFIG_HOME, True)

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
# firmware modules import each other as top-level modules, as they do on the Pico
sys.path.insert(0, str(Path(__file__).parent / "shims"))
sys.path.insert(0, str(FIRMWARE))

from hil.vpico.control import SimControl  # noqa: E402


@pytest.fixture
def fast_calls(monkeypatch):
    """CPython device tests: Device.call without its gc and sys.modules scans, each firmware
    module found and compiled once (device_harness.use_fast_calls). Not autouse: a module asks
    for it with pytestmark = pytest.mark.usefixtures("fast_calls")."""
    from device_harness import use_fast_calls  # imports the firmware: only where it is used

    use_fast_calls(monkeypatch)


@pytest.fixture
def flash(tmp_path: Path):
    """A flash folder for MemHal (which chdirs into it); the working directory restored after."""
    cwd = os.getcwd()
    yield str(tmp_path / "flash")
    os.chdir(cwd)


@pytest.fixture
def vpico(tmp_path: Path):
    """A fresh virtual Pico on the manual clock, in its own state folder; stopped afterwards."""
    ctl = SimControl(tmp_path / "sim")
    ctl.start(clock="manual", fresh=True)
    yield ctl
    ctl.stop()


@pytest.fixture
def vpico_port(vpico: SimControl) -> str:
    info = vpico.info()
    assert info is not None
    return info["port"]


def pytest_terminal_summary(terminalreporter) -> None:
    """One clear line when the emulated RP2040 tests could not run (tests/test_rp2040.py)."""
    from hil.rp2040.board import BoardError, equipment

    try:
        equipment()
    except BoardError as e:
        terminalreporter.write_line(f"RP2040 tests skipped: {e}")
