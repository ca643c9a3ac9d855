"""`make demo`: boot a fresh virtual Pico and run a short scripted clinician session.

Each step runs the real `itbpump` command, as a person would type it, and
shows its output. The session grows as features land.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from host_tools import NOT_A_MEDICAL_DEVICE
from host_tools.pump_facts import fact, stroke_nl
from hil.vpico.layout import default_state_dir

ITBPUMP = str(Path(sys.executable).parent / "itbpump")

REFUSED = True  # a step that must be refused (exit code 1)
# the pump's facts the narration names, from the firmware's definitions (host_tools/pump_facts.py)
CATHETER_NL = 250_000
TUBING_NL: int = fact("TUBING_NL")
PRIME_STROKES = -(-(CATHETER_NL + TUBING_NL) // stroke_nl())
PRIME_MIN = PRIME_STROKES * stroke_nl() * 1440 / fact("MAX_RATE_NL")  # at the maximum rate
SPINAL_PCT = fact("PROFILES")["spinal"][2]
BOLUS_CAP = fact("defaults")["bolus_cap"]
SESSION: list[tuple] = [
    ("Boot a new virtual Pico (a fresh pump, lockstep clock; it provisions its keys)", "sim start --fresh --clock manual"),
    ("The safety limits of a new pump (spinal profile)", "limits"),
    ("Fill the reservoir: 20 mL of 500 mcg/mL baclofen", "refill --removed 0 --added 20 --concentration 500 --yes"),
    ("Screening: 50 mcg worked for 6 hours; the label's starting dose", "calc start-dose --screening 50 --effect-hours 6"),
    (f"New catheter ({CATHETER_NL / 1e6:g} mL): prime it and the {TUBING_NL / 1e6:.3f} mL pump tubing",
     f"prime --catheter-volume {CATHETER_NL / 1e6:g} --yes"),
    (f"Priming runs at the maximum rate: {PRIME_STROKES} strokes, {PRIME_MIN:.1f} minutes", "sim advance 30m"),
    ("The pump reviews a program before anything changes (--dry-run: review only)",
     "program continuous --dose 100 --dry-run"),
    ("Start at 100 mcg/day: reviewed, then committed", "program continuous --dose 100 --yes"),
    ("One day passes", "sim advance 1d"),
    (f"Doubling in a day is refused: the spinal profile allows +{SPINAL_PCT} % per rolling 24 h",
     "program continuous --dose 200 --yes", REFUSED),
    ("+30 % as a day's average, but two 50 mcg boluses in the next 12 h: over 130 mcg in some 24 h, refused",
     "program periodic --basal 30 --bolus 50 --every 12h --over 1h --yes", REFUSED),
    ("Flex, +28.75 %: less by day, more at night (a 128.75 mcg/day average)",
     "program flex --step 07:00=110 --step 22:00=160 --yes"),
    ("Two more days", "sim advance 2d"),
    ("Delivered so far, excluding the priming volume", "status"),
    ("Daylight saving: local time moves an hour; the schedule follows local time", "clock --utc-offset +01:00 --yes"),
    (f"A clinician bolus on top of the running flex therapy (cap: {BOLUS_CAP} mcg)", "bolus --dose 50 --over 1h --yes"),
    ("Half an hour in: the bolus is under way, the night step runs beneath it", "sim advance 30m"),
    ("", "status"),
    ("Durations without a unit are refused (a 2004 recall)", "bolus --dose 50 --over 6 --yes", REFUSED),
    ("Patient boluses: off by default; enabling warns and counts them at their maximum",
     "ptm --enable --dose 10 --over 10m --max-per-day 3 --lockout 3h --yes"),
    ("Two hours later the bolus has ended; the patient presses the button", "sim advance 2h"),
    ("", "patient-bolus"),
    ("Again an hour later: locked out, and told for how long", "sim advance 1h"),
    ("", "patient-bolus", REFUSED),
    ("Power cut for ten minutes: the pump resumes its therapy on the same port", "sim fault power-cut --off-for 10m"),
    ("", "status"),
    ("The motor stalls (2012/2019 field actions): delivery halts, restarts are tried", "sim fault motor-stall"),
    ("", "sim advance 30m"),
    ("The stall alarm is critical; acknowledging silences it, the condition stays", "alarms --ack"),
    ("The motor frees up: the next restart attempt delivers, the alarm clears", "sim fault motor-stall --off"),
    ("", "sim advance 30m"),
    ("", "alarms"),
    ("The event log keeps every change, alarm, override and reset", "log --last 16"),
    ("Scripts get JSON", "--json status"),
    ("A real Pico gets the same mpy-cross build and its own keys (dry run: builds, opens no port)",
     "flash --dry-run"),
    ("Power the virtual Pico off", "sim stop"),
]
# continuous 100 mcg/day for one day, then flex for two whole days: a flex day delivers
# (110 x 15 h + 160 x 9 h) / 24 h = 128.75 mcg = 0.2575 mL; at 500 mcg/mL
PROGRAMMED_3_DAYS_NL = 200_000 + 2 * 257_500


def main() -> int:
    state = os.environ.get("ITBPUMP_SIM_DIR") or str(default_state_dir().with_name("demo"))
    env = {**os.environ, "ITBPUMP_SIM_DIR": state, "ITBPUMP_PORT": "sim"}
    print(f"ITB pump controller demo: virtual Pico in {state}\n{NOT_A_MEDICAL_DEVICE}\n")
    failures = 0
    for title, command, *refused in SESSION:
        print(f"# {title}\n$ itbpump {command}" if title else f"$ itbpump {command}")
        r = subprocess.run([ITBPUMP, *shlex.split(command)], env=env, capture_output=True, text=True)
        out = (r.stdout + r.stderr).rstrip()
        print(out + "\n" if out else "")
        if (r.returncode != 0) != bool(refused):
            failures += 1
            print(f"!! unexpected exit code {r.returncode}\n")
        if title.startswith("Delivered so far"):
            failures += _delivered_vs_programmed(env)
    return 1 if failures else 0


def _delivered_vs_programmed(env: dict) -> int:
    r = subprocess.run([ITBPUMP, "--json", "status"], env=env, capture_output=True, text=True)
    delivered_nl = round(json.loads(r.stdout)["therapy"]["delivered_ml"] * 1_000_000)
    diff = (PROGRAMMED_3_DAYS_NL - delivered_nl) / stroke_nl()
    print(f"=> programmed over those 3 days: 0.200000 + 2 x 0.257500 = {PROGRAMMED_3_DAYS_NL / 1e6:.6f} mL; "
          f"delivered {delivered_nl / 1e6:.6f} mL: {diff:g} strokes apart (exact to the stroke: < 1)\n")
    return 0 if 0 <= diff < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
