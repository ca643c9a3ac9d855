"""Flash wear and power-cut safety (spec §6), measured on the virtual Pico.

1. Flash writes per simulated day (state checkpoints + event log + renames
   counted by the HAL) for a continuous and a flex prescription, 7 days each.
2. Reservoir-estimate error after power cuts at random instants (half of them
   in the middle of a flash write): how far below the plant's truth each cut
   leaves the estimate (never above it), against one checkpoint (15 minutes of
   delivery).
Numbers, not asserts. --quick: one day per program and four cuts (the test suite's smoke test).
"""

from __future__ import annotations

import random
import statistics
import sys

from common import options, virtual_pico, write_result

from hil.vpico.control import SimError
from host_tools.client import PumpClient
from host_tools.pump_facts import fact, stroke_nl

DAY_MS = 86_400_000
STROKE_NL = stroke_nl()
CHECKPOINT_MIN = 1440 // fact("CKPT_DAY_FRACTION")  # store.py saves ahead by 15 min of delivery, in whole strokes
PROGRAMS = {
    "continuous 500 mcg/day": {"mode": "continuous", "dose_mcg": 500},
    "flex 07:00=350 22:00=500": {"mode": "flex", "days": {"all": [[420, 350], [1320, 500]]}},
}


def writes_per_day(program: dict, days: int = 7) -> dict:
    with virtual_pico() as (ctl, port):
        with PumpClient(port) as c:
            c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
            c.program(**program, override="bench: first program on a new pump")
            start = c.diag()["flash_writes"]
        ctl.advance(days * DAY_MS)
        with PumpClient(port) as c:
            end = c.diag()["flash_writes"]
    return {"days": days, "writes": end - start, "per_day": round((end - start) / days, 1)}


def cut_errors(cuts: int, seed: int = 1) -> dict:
    rnd = random.Random(seed)
    steps = []
    with virtual_pico() as (ctl, port):
        with PumpClient(port) as c:
            c.refill(removed_nl=0, added_nl=20_000_000, concentration=500)
            c.program(mode="continuous", dose_mcg=500, override="bench: first program on a new pump")
        bias = 0
        for _ in range(cuts):
            ctl.advance(rnd.randint(1, 240) * 60_000)
            if rnd.random() < 0.5:
                ctl.power_cut()
            else:
                ctl.rig(f"cutwrite {rnd.randint(1, 2)}")
                try:
                    ctl.advance(40 * 60_000)
                except SimError:
                    pass
            info = ctl.info()
            truth = 20_000_000 - STROKE_NL * (info["plant_strokes_before"] + ctl.hardware()["strokes"])
            with PumpClient(port) as c:
                est = c.status()["reservoir_nl"]
            steps.append(truth - est - bias)
            bias = truth - est
    window = -(-1_000_000 * CHECKPOINT_MIN // (1440 * STROKE_NL)) * STROKE_NL  # one checkpoint at 1 mL/day
    return {"cuts": cuts, "per_cut_nl": steps, "max_nl": max(steps), "min_nl": min(steps),
            "mean_nl": round(statistics.mean(steps)), "checkpoint_nl": window,
            "estimate_ever_above_truth": min(steps) < 0, "cumulative_nl": bias}


def main() -> int:
    opts = options(__doc__)
    days, cuts = (1, 4) if opts.quick else (7, 40)
    wear = {name: writes_per_day(p, days) for name, p in PROGRAMS.items()}
    errors = cut_errors(cuts)
    path = write_result("persistence", {"flash_writes": wear, "power_cuts": errors}, opts)
    for name, w in wear.items():
        print(f"flash writes, {name}: {w['per_day']} per day ({w['writes']} in {w['days']} days)")
    print(f"power cuts: {errors['cuts']}; each left the estimate {errors['min_nl']}..{errors['max_nl']} nL "
          f"(mean {errors['mean_nl']}) further below the truth; one checkpoint is {errors['checkpoint_nl']} nL; "
          f"above the truth: {'YES' if errors['estimate_ever_above_truth'] else 'never'}; "
          f"cumulative after all cuts {errors['cumulative_nl']} nL")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
