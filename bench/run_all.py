"""`make bench`: run every benchmark in bench/ and print its numbers (JSON in bench/results/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["link.py", "therapy.py", "persistence.py"]


def main() -> int:
    worst = 0
    for name in BENCHES:
        print(f"== {name}")
        worst = max(worst, subprocess.call([sys.executable, str(HERE / name)], cwd=HERE))
    return worst


if __name__ == "__main__":
    sys.exit(main())
