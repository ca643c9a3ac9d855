"""`make demo`: boot a fresh virtual Pico and run a short scripted clinician session.

Each step runs the real `itbpump` command, as a person would type it, and
shows its output. The session grows as features land.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from host_tools import NOT_A_MEDICAL_DEVICE
from hil.vpico.layout import default_state_dir

ITBPUMP = str(Path(sys.executable).parent / "itbpump")

SESSION = [
    ("Boot a new virtual Pico (a fresh pump, lockstep clock)", "sim start --fresh --clock manual"),
    ("Read the pump", "status"),
    ("Let a day pass on the virtual clock", "sim advance 1d"),
    ("The pump's clock moved by exactly one day", "status"),
    ("Cut the power for ten minutes (the port stays the same)", "sim fault power-cut --off-for 10m"),
    ("The pump came back and says so", "status"),
    ("Durations without a unit are refused (a 2004 recall)", "sim advance 6"),
    ("Scripts get JSON", "--json status"),
    ("Power the virtual Pico off", "sim stop"),
]


def main() -> int:
    state = os.environ.get("ITBPUMP_SIM_DIR") or str(default_state_dir().with_name("demo"))
    env = {**os.environ, "ITBPUMP_SIM_DIR": state, "ITBPUMP_PORT": "sim"}
    print(f"ITB pump controller demo: virtual Pico in {state}\n{NOT_A_MEDICAL_DEVICE}\n")
    failures = 0
    for title, command in SESSION:
        print(f"# {title}\n$ itbpump {command}")
        r = subprocess.run([ITBPUMP, *shlex.split(command)], env=env, capture_output=True, text=True)
        out = (r.stdout + r.stderr).rstrip()
        print(out + "\n" if out else "")
        expected_refusal = command == "sim advance 6"
        if (r.returncode != 0) != expected_refusal:
            failures += 1
            print(f"!! unexpected exit code {r.returncode}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
