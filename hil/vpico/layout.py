"""Where a virtual Pico keeps its things: one state folder stands for one board.

  board.json      the board: clock mode, reservoir size, virtual time (kept)
  run.json        the running supervisor: pids, port, control socket (removed at stop)
  supervisor.lock locked by the running supervisor for its life: one board per folder
  flash/          the Pico's flash file system (the firmware's files; keys.json: its role keys)
  hw/             what the hardware itself keeps: chip id (uid), RTC, boot parameters
  build/          the firmware as flashed: modules compiled by mpy-cross
  ttyITB          symlink to the programmer port (/dev/pts/N)
  supervisor.log, vm.log
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from host_tools.firmware_build import FIRMWARE_DIR  # noqa: F401 - the virtual Pico runs the same tree

DEFAULT_HEAP = "192K"  # what a Pico's MicroPython offers
# the firmware's heap budget on this 64-bit VM (docs/architecture.md, "Memory": 64 KB for the firmware,
# 8 KB for the virtual board's HAL, 16 KB for 64-bit objects): the guard tests and bench/ run it
BUDGET_HEAP = "88K"
DEVICE_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)

# reset causes, as firmware/hal/__init__.py numbers them
RESET_POWER = 0
RESET_WATCHDOG = 1


def default_state_dir() -> Path:
    env = os.environ.get("ITBPUMP_SIM_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "itbpump" / "sim"


def device_seconds_now() -> int:
    return int((datetime.now(timezone.utc) - DEVICE_EPOCH).total_seconds())


class Paths:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.board = self.root / "board.json"
        self.run = self.root / "run.json"
        self.lock = self.root / "supervisor.lock"  # flock(2) held by the running supervisor (boardlock.py)
        self.flash = self.root / "flash"
        self.hw = self.root / "hw"
        self.uid = self.hw / "uid"  # the chip's unique id: 8 bytes, read by firmware/hal/sim_boot.py
        self.device_keys = self.flash / "keys.json"  # the pump's role keys, as firmware/safety/auth.py reads them
        self.build = self.root / "build"
        self.supervisor_log = self.root / "supervisor.log"
        self.vm_log = self.root / "vm.log"

    def ctl_socket(self) -> Path:
        """The control socket; a short temporary path when the folder's is too long for AF_UNIX."""
        path = self.root / "ctl.sock"
        if len(str(path)) < 100:
            return path
        return Path(tempfile.mkdtemp(prefix="itbpump-")) / "ctl.sock"


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: dict, mode: int = 0o644) -> None:
    """Write atomically: a reader never sees half a file. mode 0o600 for a file that holds keys:
    created so (the umask can only narrow it), never readable by others even for a moment."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a leftover from a crash would keep its own mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=1))
    os.replace(tmp, path)
