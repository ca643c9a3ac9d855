"""Therapy on the virtual Pico: lockstep speed, heap headroom and accuracy curves (spec §3, §11).

Every run uses a fresh virtual Pico on the manual (lockstep) clock. The bench refills it, sets the
clock to a fixed instant (Monday 2025-01-06 13:37:00, UTC offset 0) and programs it, all at
virtual time 0. After that only the rig moves time. Strokes are counted by the fixture
(`hardware()["strokes"]`, the STEP pulses), not by the firmware.

Expected strokes come from host arithmetic that does not use the firmware's code. The programmed
volume V(t) is the integral of the prescribed rate: whole nL/day, dose x 10**6 / concentration,
with flex steps starting at whole local seconds. It is kept as an exact integer in nL*s/day.
Delivery that is exact to the stroke means strokes(t) == floor(V(t) / stroke volume) at every sample.

1. Speed: one `advance()` over a whole 180-day refill interval, timed with perf_counter (target
   <= 10 s). Prescriptions are chosen so that 180 days use the 20 mL reservoir but stay above the
   0.5 mL empty threshold, so no alarm or minimum rate can change delivery. Continuous: 54 mcg/day
   at 500 mcg/mL = 0.108 mL/day. Flex: 07:00 40 and 22:00 76 mcg/day = 0.107 mL/day.
2. Memory: the same continuous run on heaps of 192K (the default), 96K and the firmware's budget,
   88K (docs/architecture.md, "Memory"), in 30-day advances, with a `diag` after each. `diag` calls gc.collect() first, so mem_alloc is the live heap after a
   collection (what stays resident, with the diag module loaded), not the peak between collections.
   A heap passes when nothing raised and the VM never rebooted (`boots == 1`).
3. Accuracy curves, after the trumpet curves of IEC 60601-2-24 but with windows measured in hours:
   7 days at a typical rate (500 mcg/day at 500 mcg/mL = 1 mL/day). The stroke count is sampled
   every 10 min on day 1 and every hour after that. Windows of 1/2/4/8/24 h slide over the hourly
   samples, and windows of 10/20/30/60 min over day 1's 10-min samples. Each window gives
   (delivered - programmed) / programmed in % and in strokes. A flex day/night schedule at typical
   rates (07:00 400, 22:00 600 mcg/day) gets the same treatment, with its programmed volume taken
   from the schedule. The 13:37 start puts step changes inside the windows.

The bench prints numbers and writes bench/results/therapy.json; it asserts nothing about timing
(the machines are shared). A section that fails records its error, the others still run, and the
bench exits 1. --quick runs every section over fewer days (the test suite's smoke test).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from fractions import Fraction

from common import BUDGET_HEAP, DEFAULT_HEAP, options, virtual_pico, write_result

from host_tools.client import PumpClient
from host_tools.pump_facts import stroke_nl

STROKE_NL = stroke_nl()  # the firmware's (dose.py), read as data: the bench counts strokes, not firmware code
S_PER_DAY = 86400
DAY_MS = S_PER_DAY * 1000
HOUR_MS = 3_600_000
RESERVOIR_NL = 20_000_000
CONC = 500  # mcg/mL, the label's starting concentration
T0 = int((datetime(2025, 1, 6, 13, 37, tzinfo=timezone.utc)
          - datetime(2000, 1, 1, tzinfo=timezone.utc)).total_seconds())  # a Monday, 13:37:00

SPEED_DAYS = 180
# the virtual Pico's flash is a folder: every checkpoint writes a file and renames it over the
# older copy (~86 a day here), which on ext4 waits for the disk. Speed runs once in the
# temporary folder and once in RAM (tmpfs), to tell the VM's speed from the host disk's.
RAM_DIR = "/dev/shm"
SPEED_CONTINUOUS = {"mode": "continuous", "dose_mcg": 54}
SPEED_FLEX = {"mode": "flex", "days": {"all": [[7 * 60, 40], [22 * 60, 76]]}}
MEMORY_HEAPS = (DEFAULT_HEAP, "96K", BUDGET_HEAP)
# how long each section runs: the figures, and --quick's (every figure, over shorter runs)
FULL = {"speed_days": SPEED_DAYS, "memory_days": SPEED_DAYS, "memory_chunk_days": 30, "accuracy_days": 7}
QUICK = {"speed_days": 10, "memory_days": 10, "memory_chunk_days": 5, "accuracy_days": 2}
ACCURACY_CONTINUOUS = {"mode": "continuous", "dose_mcg": 500}
ACCURACY_FLEX = {"mode": "flex", "days": {"all": [[7 * 60, 400], [22 * 60, 600]]}}
LONG_WINDOWS_H = (1, 2, 4, 8, 24)
SHORT_WINDOWS_MIN = (10, 20, 30, 60)


# -- the programmed volume, computed on the host ---------------------------------------------------
class Prescription:
    """The programmed volume as an exact integer in nL*s/day, from device second 0 (local = UTC)."""

    def __init__(self, program: dict, conc: int):
        npm = 10**6 // conc  # nL per mcg, exact for every library concentration
        if program["mode"] == "continuous":
            steps = [(0, program["dose_mcg"])]
        else:
            steps = [(m * 60, mcg) for m, mcg in program["days"]["all"]]
        # (start second of day, rate nL/day); before the first step, the day's last step goes on
        self.steps = [(s, mcg * npm) for s, mcg in steps]
        self.day_units = self._within_day(S_PER_DAY)

    def _within_day(self, sec: int) -> int:
        """nL*s/day from the day's midnight to sec (0..86400) into it."""
        total = 0
        rate = self.steps[-1][1]
        start = 0
        for step_start, step_rate in self.steps:
            if step_start >= sec:
                break
            total += rate * (step_start - start)
            rate, start = step_rate, step_start
        return total + rate * (sec - start)

    def units(self, t_s: int) -> int:
        days, sec = divmod(t_s, S_PER_DAY)
        return days * self.day_units + self._within_day(sec)

    def volume_nl(self, a_s: int, b_s: int) -> Fraction:
        return Fraction(self.units(b_s) - self.units(a_s), S_PER_DAY)

    def expected_strokes(self, a_s: int, b_s: int) -> int:
        """floor(programmed volume / stroke), delivery starting at a_s with an empty accumulator."""
        return (self.units(b_s) - self.units(a_s)) // (S_PER_DAY * STROKE_NL)

    def daily_nl(self) -> Fraction:
        return Fraction(self.day_units, S_PER_DAY)


# -- one fresh virtual Pico, programmed at virtual time 0 ------------------------------------------------
def program_pump(c: PumpClient, ctl, program: dict, note: dict | None = None) -> dict:
    """Refill, set the clock, program; note["stage"] names the request under way (for failures)."""
    note = {} if note is None else note
    note["stage"] = "refill request"
    c.refill(removed_nl=0, added_nl=RESERVOIR_NL, concentration=CONC)
    note["stage"] = "clock request"
    c.clock(set_s=T0, utc_offset_min=0)
    note["stage"] = "program request"
    answer = c.program(**program, override="bench: first program on a new pump")  # past the initial-dose cap
    hw = ctl.hardware()
    st = c.status()
    if st["clock"] != T0 or hw["vnow_ms"] % 1000:
        raise RuntimeError(f"device clock {st['clock']} at vnow {hw['vnow_ms']} ms after setup; expected "
                           f"{T0} at a whole second: the host model would be misaligned")
    return {"answer": answer, "vnow0": hw["vnow_ms"], "strokes0": hw["strokes"]}


def section(name: str, fn, *args) -> dict:
    t0 = time.perf_counter()
    try:
        out = fn(*args)
    except Exception as e:  # noqa: BLE001 - a bench reports, it does not stop
        traceback.print_exc()
        out = {"error": f"{type(e).__name__}: {e}"}
    out["section_wall_s"] = round(time.perf_counter() - t0, 3)
    print(f"   [{name}: {out['section_wall_s']} s]", flush=True)
    return out


# -- 1. speed ----------------------------------------------------------------------------------------
def speed_run(label: str, program: dict, days: int, state_in: str | None = None) -> dict:
    rx = Prescription(program, CONC)
    with virtual_pico(state_in=state_in) as (ctl, port), PumpClient(port) as c:
        setup = program_pump(c, ctl, program)
        t0 = time.perf_counter()
        ctl.advance(days * DAY_MS)
        wall = time.perf_counter() - t0
        hw = ctl.hardware()
        st = c.status()
        writes = c.diag().get("flash_writes")
        boots = ctl.info()["boots"]
    fixture = hw["strokes"] - setup["strokes0"]
    expected = rx.expected_strokes(T0, T0 + days * S_PER_DAY)
    out = {
        "program": program,
        "concentration_mcg_per_ml": CONC,
        "programmed_nl_per_day": str(rx.daily_nl()),
        "device_rate_nl_per_day_at_start": setup["answer"].get("rate_nl_per_day"),
        "days": days,
        "state_in": state_in or tempfile.gettempdir(),
        "flash_writes": writes,
        "wall_s": round(wall, 4),
        "sim_days_per_wall_s": round(days / wall, 1),
        "target_wall_s": 10.0,
        "strokes_fixture": fixture,
        "strokes_expected": expected,
        "strokes_diff": fixture - expected,
        "strokes_firmware": st["therapy"]["strokes"],
        "reservoir_nl": st["reservoir_nl"],
        "reservoir_nl_expected": RESERVOIR_NL - expected * STROKE_NL,
        "alarms": [a.get("code", a) if isinstance(a, dict) else a for a in st.get("alarms", [])],
        "boots": boots,
    }
    print(f"   {label} (flash in {out['state_in']}, {out['flash_writes']} writes): {days} d in "
          f"{out['wall_s']} s wall ({out['sim_days_per_wall_s']} sim days/s), "
          f"strokes {fixture} vs expected {expected} (diff {fixture - expected}), "
          f"reservoir {st['reservoir_nl']} nL", flush=True)
    return out


# -- 2. memory -------------------------------------------------------------------------------------
def memory_run(heap: str, days: int, chunk_days: int) -> dict:
    program = SPEED_CONTINUOUS
    rx = Prescription(program, CONC)
    out: dict = {"heap": heap, "completed": False, "stage": "start"}
    diags: list[dict] = []
    try:
        with virtual_pico(heap=heap) as (ctl, port):
            try:
                out["stage"] = "connect"
                with PumpClient(port) as c:
                    diags.append({"day": 0, "when": "boot", **c.diag()})
                    setup = program_pump(c, ctl, program, out)
                    diags.append({"day": 0, "when": "programmed", **c.diag()})
                    for day in range(chunk_days, days + 1, chunk_days):
                        out["stage"] = f"advance to day {day}"
                        ctl.advance(chunk_days * DAY_MS)
                        out["stage"] = f"diag at day {day}"
                        diags.append({"day": day, "when": "chunk", **c.diag()})
                    hw = ctl.hardware()
                info = ctl.info() or {}
                out["boots"] = info.get("boots")
                out["strokes_diff"] = (hw["strokes"] - setup["strokes0"]
                                       - rx.expected_strokes(T0, T0 + days * S_PER_DAY))
                out["completed"] = out["boots"] == 1
                out["stage"] = "done"
            except Exception as e:  # noqa: BLE001
                out["error"] = f"{type(e).__name__}: {e}"
                info = ctl.info() or {}
                out["boots"] = info.get("boots")
                out["vm_log_tail"] = _tail(ctl.paths.vm_log)
                out["crash_log_tail"] = _tail(ctl.paths.flash / "crash.log")
    except Exception as e:  # noqa: BLE001 - the board did not even start
        out["error"] = f"{type(e).__name__}: {e}"
    if out.get("boots", 1) not in (None, 1) and "error" not in out:
        out["error"] = f"the VM rebooted ({out['boots']} boots)"
    out["diags"] = [{k: d[k] for k in ("day", "when", "mem_alloc", "mem_free")} for d in diags]
    chunks = [d["mem_alloc"] for d in diags if d["when"] == "chunk"]
    if diags:
        out["boot_mem_alloc"] = diags[0]["mem_alloc"]
        out["heap_bytes"] = diags[0]["mem_alloc"] + diags[0]["mem_free"]
    if chunks:
        out["final_mem_alloc"] = chunks[-1]
        out["peak_mem_alloc"] = max(chunks)
    what = ("completed" if out["completed"] else f"FAILED at {out['stage']}: {out.get('error', '?')}")
    out["days"] = days
    print(f"   heap {heap}: {what} ({days} d); boot {out.get('boot_mem_alloc')} B, final {out.get('final_mem_alloc')} B, "
          f"peak {out.get('peak_mem_alloc')} B allocated (after gc)", flush=True)
    return out


def _tail(path, lines: int = 6) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if ln.strip()][-lines:]


# -- 3. accuracy curves ------------------------------------------------------------------------------
def sample_run(program: dict, days: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]], dict]:
    """(10-min samples of day 1, hourly samples of the whole run, end status): (seconds since T0, strokes)."""
    fine = [(0, 0)]
    hourly = [(0, 0)]
    with virtual_pico() as (ctl, port), PumpClient(port) as c:
        setup = program_pump(c, ctl, program)
        s0 = setup["strokes0"]
        t = 0
        for i in range(1, 145):  # day 1 in 10-min steps
            ctl.advance(600_000)
            t += 600
            fine.append((t, ctl.hardware()["strokes"] - s0))
            if i % 6 == 0:
                hourly.append(fine[-1])
        for _ in range(24, days * 24):
            ctl.advance(HOUR_MS)
            t += 3600
            hourly.append((t, ctl.hardware()["strokes"] - s0))
        st = c.status()
        end = {"strokes_firmware": st["therapy"]["strokes"], "reservoir_nl": st["reservoir_nl"],
               "boots": ctl.info()["boots"]}
    return fine, hourly, end


def window_stats(samples: list[tuple[int, int]], window_s: int, rx: Prescription) -> dict:
    step = samples[1][0] - samples[0][0]
    k = window_s // step
    pcts = []
    errs = []
    programmed = []
    for i in range(len(samples) - k):
        (a, sa), (b, sb) = samples[i], samples[i + k]
        prog_strokes = rx.volume_nl(T0 + a, T0 + b) / STROKE_NL
        err = (sb - sa) - prog_strokes
        errs.append(err)
        programmed.append(prog_strokes)
        pcts.append(err / prog_strokes * 100)
    return {
        "windows": len(errs),
        "programmed_strokes_min": round(float(min(programmed)), 3),
        "programmed_strokes_max": round(float(max(programmed)), 3),
        "max_pct": round(float(max(pcts)), 4),
        "min_pct": round(float(min(pcts)), 4),
        "max_abs_err_strokes": round(float(max(abs(e) for e in errs)), 4),
        "under_one_stroke": all(abs(e) < 1 for e in errs),
    }


def accuracy_run(label: str, program: dict, days: int) -> dict:
    rx = Prescription(program, CONC)
    fine, hourly, end = sample_run(program, days)
    # exactness at every sample: strokes(t) == floor(V(t) / stroke)
    off = [(t, s, rx.expected_strokes(T0, T0 + t)) for t, s in hourly + fine
           if s != rx.expected_strokes(T0, T0 + t)]
    cum = [s - rx.volume_nl(T0, T0 + t) / STROKE_NL for t, s in hourly]
    out = {
        "program": program,
        "concentration_mcg_per_ml": CONC,
        "programmed_nl_per_day": str(rx.daily_nl()),
        "days": days,
        "samples_hourly": len(hourly),
        "samples_10min": len(fine),
        "samples_not_floor_of_programmed": len(off),
        "first_mismatches": [{"t_s": t, "strokes": s, "expected": e} for t, s, e in off[:5]],
        "cumulative_err_strokes_min": round(float(min(cum)), 4),
        "cumulative_err_strokes_max": round(float(max(cum)), 4),
        "strokes_end": hourly[-1][1],
        **end,
        "windows_h": {f"{h}h": window_stats(hourly, h * 3600, rx) for h in LONG_WINDOWS_H},
        "windows_day1_min": {f"{m}min": window_stats(fine, m * 60, rx) for m in SHORT_WINDOWS_MIN},
    }
    print(f"   {label} ({out['programmed_nl_per_day']} nL/day, {days} d): "
          f"{len(off)} samples off floor(V/{STROKE_NL}); cumulative error "
          f"{out['cumulative_err_strokes_min']}..{out['cumulative_err_strokes_max']} strokes", flush=True)
    for key, w in {**out["windows_day1_min"], **out["windows_h"]}.items():
        print(f"     {key:>6}: {w['min_pct']:+8.3f} % .. {w['max_pct']:+8.3f} %, "
              f"max |err| {w['max_abs_err_strokes']:.3f} stroke over {w['windows']} windows", flush=True)
    return out


# -- main --------------------------------------------------------------------------------------------
def main() -> int:
    opts = options(__doc__)
    sizes = QUICK if opts.quick else FULL
    t_all = time.perf_counter()
    days = sizes["speed_days"]
    print("1. speed, lockstep, one advance over a refill interval", flush=True)
    speed = {
        "continuous": section("speed continuous", speed_run, "continuous", SPEED_CONTINUOUS, days),
        "flex": section("speed flex", speed_run, "flex", SPEED_FLEX, days),
    }
    if os.path.isdir(RAM_DIR) and os.access(RAM_DIR, os.W_OK):  # the VM alone, without the host's disk
        speed["continuous_ram"] = section("speed continuous, flash in RAM", speed_run, "continuous",
                                          SPEED_CONTINUOUS, days, RAM_DIR)
        speed["flex_ram"] = section("speed flex, flash in RAM", speed_run, "flex", SPEED_FLEX, days, RAM_DIR)
    print(f"2. memory, {sizes['memory_days']} days in {sizes['memory_chunk_days']}-day advances", flush=True)
    memory = {heap: section(f"memory {heap}", memory_run, heap, sizes["memory_days"], sizes["memory_chunk_days"])
              for heap in MEMORY_HEAPS}
    print("3. accuracy curves", flush=True)
    accuracy = {
        "continuous": section("accuracy continuous", accuracy_run, "continuous", ACCURACY_CONTINUOUS,
                              sizes["accuracy_days"]),
        "flex": section("accuracy flex", accuracy_run, "flex", ACCURACY_FLEX, sizes["accuracy_days"]),
    }
    curves = {
        name: {w: {"max_pct": s["max_pct"], "min_pct": s["min_pct"]}
               for w, s in {**a.get("windows_day1_min", {}), **a.get("windows_h", {})}.items()}
        for name, a in accuracy.items()
    }
    total = round(time.perf_counter() - t_all, 1)
    path = write_result("therapy", {
        "start_device_s": T0, "start_utc": "2025-01-06T13:37:00Z", "stroke_nl": STROKE_NL,
        "reservoir_nl": RESERVOIR_NL, "speed": speed, "memory": memory, "accuracy": accuracy,
        "accuracy_curves": curves, "bench_wall_s": total, "budget_heap": BUDGET_HEAP,
    }, opts)

    print("\nsummary")
    for name, s in speed.items():
        if "error" in s:
            print(f"  speed {name}: ERROR {s['error']}")
        else:
            print(f"  speed {name} (flash in {s['state_in']}): {s['days']} d in {s['wall_s']} s (target <= 10 s for {SPEED_DAYS} d), "
                  f"{s['sim_days_per_wall_s']} d/s; strokes diff {s['strokes_diff']} "
                  f"({s['strokes_fixture']} vs {s['strokes_expected']})")
    for heap, m in memory.items():
        state = "ok" if m["completed"] else f"FAILED ({m['stage']}: {m.get('error')})"
        budget = " (the budget)" if heap == BUDGET_HEAP else ""
        print(f"  heap {heap}{budget}: {state} over {m['days']} d; boot {m.get('boot_mem_alloc')} B, "
              f"final {m.get('final_mem_alloc')} B, peak {m.get('peak_mem_alloc')} B allocated")
    for name, a in accuracy.items():
        if "error" in a:
            print(f"  accuracy {name}: ERROR {a['error']}")
            continue
        worst = max(w["max_abs_err_strokes"] for w in a["windows_h"].values())
        c = curves[name]
        print(f"  accuracy {name}: 1 h {c['1h']['min_pct']:+.2f}..{c['1h']['max_pct']:+.2f} %, "
              f"24 h {c['24h']['min_pct']:+.3f}..{c['24h']['max_pct']:+.3f} %; "
              f"worst window error {worst:.3f} stroke (< 1 required); "
              f"{a['samples_not_floor_of_programmed']} samples off floor(V/{STROKE_NL})")
    print(f"  bench wall time {total} s; written to {path}")
    failed = [n for n, r in [*speed.items(), *accuracy.items()] if "error" in r]
    failed += [f"heap {h}" for h, m in memory.items() if not m["completed"]]
    if failed:
        print(f"  FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
