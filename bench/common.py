"""Shared bench plumbing: options, a throwaway virtual Pico, and where results go."""

from __future__ import annotations

import argparse
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
from hil.vpico.layout import BUDGET_HEAP, DEFAULT_HEAP  # noqa: E402,F401 - the heaps benches run

RESULTS = ROOT / "bench" / "results"


def options(doc: str | None) -> argparse.Namespace:
    """--quick: every figure over shorter runs (the test suite's smoke test); --results: where the
    JSON goes (bench/results/ by default)."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a reduced run: every figure, over shorter runs")
    ap.add_argument("--results", type=Path, default=RESULTS, help=f"folder for the JSON results ({RESULTS})")
    return ap.parse_args()


@contextmanager
def virtual_pico(heap: str = DEFAULT_HEAP, clock: str = "manual", state_in: str | None = None):
    """A fresh virtual Pico; state_in: the folder its state folder (its flash) goes in."""
    with tempfile.TemporaryDirectory(prefix="itbpump-bench-", dir=state_in) as d:
        ctl = SimControl(Path(d) / "sim")
        info = ctl.start(clock=clock, fresh=True, heap=heap)
        try:
            yield ctl, info["port"]
        finally:
            ctl.stop()


def write_result(name: str, data: dict, opts: argparse.Namespace) -> Path:
    opts.results.mkdir(parents=True, exist_ok=True)
    data = {"bench": name, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.machine(), "python": platform.python_version(), "quick": opts.quick, **data}
    path = opts.results / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
