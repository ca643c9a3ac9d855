"""Shared fixtures: firmware importable under CPython, and virtual Picos for integration tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
# firmware modules import each other as top-level modules, as they do on the Pico
sys.path.insert(0, str(Path(__file__).parent / "shims"))
sys.path.insert(0, str(FIRMWARE))

from hil.vpico.control import SimControl  # noqa: E402


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
