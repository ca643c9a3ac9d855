"""`make bench` in miniature: every bench runs (--quick) and prints every figure. No time is judged."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from hil.vpico.layout import BUDGET_HEAP, DEFAULT_HEAP

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"[-+]?\d+(\.\d+)?"


def test_every_bench_runs_quick_and_prints_its_figures(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--results", str(tmp_path)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    figures = r.stdout.split("== figures", 1)[1]
    expected = [
        *(rf"status round trip, heap {h}: median {NUMBER} ms, p99 {NUMBER} ms" for h in (DEFAULT_HEAP, BUDGET_HEAP)),
        rf"\d+-day run on disk \(.*\): continuous {NUMBER} s, flex {NUMBER} s",
        *(rf"heap {h}(, the budget)?: runs \d+ d; \d+ B after boot, peak \d+ B" for h in (DEFAULT_HEAP, BUDGET_HEAP)),
        *(rf"accuracy {p} \(\d+ d\): 1 h {NUMBER}\.\.{NUMBER} %, 24 h {NUMBER}\.\.{NUMBER} %" for p in ("continuous", "flex")),
        rf"flash writes per day: continuous .* {NUMBER}, flex .* {NUMBER}",
    ]
    if os.access("/dev/shm", os.W_OK):
        expected.append(rf"\d+-day run in RAM \(/dev/shm\): continuous {NUMBER} s, flex {NUMBER} s")
    for pattern in expected:
        assert re.search(pattern, figures), f"no figure matching {pattern!r} in:\n{figures}"
    assert "FAILED" not in r.stdout and "MISSING" not in figures
    assert f"heap {BUDGET_HEAP}, the budget" in figures  # the bench runs the heap the docs name
    for name in ("link", "therapy", "persistence"):
        assert json.loads((tmp_path / f"{name}.json").read_text())["quick"] is True


def test_the_month_bench_is_not_in_the_quick_run():
    """bench/rp2040_month.py (`make bench-month`, an hour) imports and declines --quick in one line."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "rp2040_month.py"), "--quick"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "rp2040 month bench skipped: not in --quick (it takes an hour)"
