"""Shared bench plumbing: a throwaway virtual Pico, and where results go."""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hil.vpico.control import SimControl  # noqa: E402

RESULTS = ROOT / "bench" / "results"


@contextmanager
def virtual_pico(heap: str = "192K", clock: str = "manual", state_in: str | None = None):
    """A fresh virtual Pico; state_in: the folder its state folder (its flash) goes in."""
    with tempfile.TemporaryDirectory(prefix="itbpump-bench-", dir=state_in) as d:
        ctl = SimControl(Path(d) / "sim")
        info = ctl.start(clock=clock, fresh=True, heap=heap)
        try:
            yield ctl, info["port"]
        finally:
            ctl.stop()


def write_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"bench": name, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.machine(), "python": platform.python_version(), **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
