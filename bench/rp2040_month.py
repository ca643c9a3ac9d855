"""Peak heap over a 30-day run on the emulated RP2040 (spec §11: at most 64 KB over a 30-day run).

The firmware as `itbpump flash` puts it on a Pico, on rp2040js at 125 MHz, its time
fast-forwarded: a refill and a continuous program, then every simulated day a status read and,
through the month, what a clinic does: a clinician bolus, a dose change, a flex week, an alarm
acknowledged, an event-log read. `diag heap_watch` measures the live heap after every module
call the whole time (the firmware's own peak, not a sample); the bench prints it per week and
writes bench/results/rp2040_month.json. Minutes of wall time (a day fast-forwards in ~1-2 min
on a quiet machine, more when shared): not in `make bench`; skips with one line without the
RP2040 test equipment."""

from __future__ import annotations

import os
import sys
import time

from common import write_result
from rp2040 import CONC, DOSE, answered, on_a_flashed_board

from hil.rp2040.board import Board

DAYS = 30
HEAP_TARGET_B = 65536


def clinic_day(c, day: int) -> str:
    """What the clinic does on this day of the month (most days: nothing but a status read)."""
    if day == 3:
        c.authenticate("clinician")
        c.bolus(dose_mcg=20, over_s=3600)
        return "bolus 20 mcg over 1 h"
    if day == 8:
        c.authenticate("clinician")
        c.program(mode="continuous", dose_mcg=DOSE - 20)
        return f"continuous {DOSE - 20} mcg/day"
    if day == 15:
        c.authenticate("clinician")
        c.program(mode="flex", days={"all": [[420, DOSE - 40], [1260, DOSE]]})
        return "flex: two steps a day"
    if day == 22:
        c.log(last=50)
        c.alarms()
        return "event log (50) and alarms read"
    return ""


def main() -> int:
    return on_a_flashed_board("rp2040 month bench", "an hour", __doc__, month)


def month(board: Board, flash_s: float, opts) -> int:
    board.power_cut()
    return run(board, int(os.environ.get("ITBPUMP_BENCH_DAYS", DAYS)), opts)


def run(board: Board, days: int, opts) -> int:
    t0 = time.monotonic()
    with answered(board) as c:
        heap_boot = c.diag()["mem_alloc"]
        c.send("diag", {"heap_watch": True})
        c.authenticate("clinician")
        c.refill(0, 20_000_000, CONC)
        c.program(mode="continuous", dose_mcg=DOSE)
    weeks: list[dict] = []
    events: dict[int, str] = {}
    for day in range(1, days + 1):
        board.pace("free")
        board.advance(86400)
        board.pace("paced")
        with answered(board) as c:
            s = c.status()
            did = clinic_day(c, day)
            if did:
                events[day] = did
            if day % 7 == 0 or day == days:
                diag = c.diag()
                weeks.append({"day": day, "peak_b": diag["mem_peak"], "alloc_b": diag["mem_alloc"],
                              "strokes": s["therapy"]["strokes"], "reservoir_nl": s["reservoir_nl"],
                              "wall_s": round(time.monotonic() - t0)})
                print(f"  day {day:2}: heap peak {diag['mem_peak']} B, live {diag['mem_alloc']} B, "
                      f"{s['therapy']['strokes']} strokes, {time.monotonic() - t0:.0f} s wall", flush=True)
    peak = max(w["peak_b"] for w in weeks)
    result = {"days": days, "heap_after_boot_b": heap_boot, "heap_peak_b": peak, "weeks": weeks,
              "clinic": events, "wall_s": round(time.monotonic() - t0),
              "targets": {"heap_peak_b": HEAP_TARGET_B}}
    path = write_result("rp2040_month", result, opts)
    print(f"emulated RP2040, {days} days: heap {heap_boot} B after boot, peak {peak} B "
          f"(target {HEAP_TARGET_B}), {result['wall_s']} s wall -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
