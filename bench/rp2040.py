"""Speed and memory on the target (spec §11): the firmware on an emulated RP2040 (hil/rp2040) at
125 MHz. Device CPU time per request type and per stroke from the chip's busy cycle count (idle
time, when the core waits in WFE, is not CPU), boot time, heap after boot and peak, and how fast
an idle hour fast-forwards. Skips with one line without the RP2040 test equipment."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from common import options, write_result

from hil.rp2040.board import Board, BoardError, equipment
from host_tools import flash
from host_tools.client import PumpClient
from host_tools.errors import DeviceRefused, PumpError

HZ = 125_000_000
TIMEOUT = 10.0
STEP_S = 0.9  # the chip's time given to each request (stepped())
REPEAT = 7
DOSE, CONC = 200, 500  # mcg/day, mcg/mL: 66.7 strokes an hour


def answered(board: Board, within_s: float = 120.0) -> PumpClient:
    end = time.monotonic() + within_s
    while True:
        try:
            return PumpClient(board.port, timeout=TIMEOUT, retries=1)
        except PumpError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


@contextmanager
def stepped(board: Board, client: PumpClient):
    """The board runs free (its time moves only in advance()) and each request the client writes
    gets STEP_S of the chip's time, in which the chip reads it, answers and goes back to sleep.
    A request's cycles are then its own: neither the host's wall time nor an estimate of the idle
    loop's share of it (which read +-0.7 ms on status) comes in. STEP_S is more than the longest
    request's CPU and less than the idle main loop's wake (3 s, hal/rp2.py), so no idle wake falls inside."""
    write = client._write

    def write_and_run(data: bytes) -> None:
        write(data)
        time.sleep(0.03)  # the runner takes host bytes from the pty every few ms
        board.advance(STEP_S)

    board.pace("free")
    client._write = write_and_run  # type: ignore[method-assign]
    try:
        yield
    finally:
        client._write = write  # type: ignore[method-assign]
        board.pace("paced")


def cpu_ms(board: Board, fn) -> float:
    """Busy CPU of the requests fn makes (inside stepped())."""
    c0 = board.state()["cycles"]
    fn()
    return (board.state()["cycles"] - c0) * 1000 / HZ


def fast_hour(board: Board) -> tuple[int, float]:
    """Busy cycles and wall seconds of one fast-forwarded hour."""
    board.pace("free")
    c0, t = board.state()["cycles"], time.monotonic()
    board.advance(3600)
    wall = time.monotonic() - t
    cycles = board.state()["cycles"] - c0
    board.pace("paced")
    return cycles, wall


def on_a_flashed_board(name: str, takes: str, doc: str | None, measure) -> int:
    """A bench's main: skips in --quick or without the RP2040 test equipment (one line each);
    else measure(board, flash_s, opts) on a blank emulated board `itbpump flash`ed, with its own
    keys (not the user's)."""
    opts = options(doc)
    if opts.quick:
        print(f"{name} skipped: not in --quick (it takes {takes})")
        return 0
    try:
        equipment()
    except BoardError as e:
        print(f"{name} skipped: {e}")
        return 0
    with tempfile.TemporaryDirectory(prefix="itbpump-bench-rp2040-") as d:
        os.environ["XDG_CONFIG_HOME"] = str(Path(d) / "config")  # its keys only, not the user's
        with Board(Path(d) / "dut") as board:
            time.sleep(2)
            t = time.monotonic()
            flash.flash(board.port, verify_s=180)
            return measure(board, time.monotonic() - t, opts)


def main() -> int:
    return on_a_flashed_board("rp2040 bench", "minutes", __doc__, measure)


def measure(board: Board, flash_s: float, opts) -> int:
    # boot: power on to the first answer
    c0 = board.state()["cycles"]
    t = time.monotonic()
    board.power_cut()
    answered(board).close()
    boot_wall = time.monotonic() - t
    boot_cpu_ms = (board.state()["cycles"] - c0) * 1000 / HZ
    requests: dict[str, list[float]] = {}
    with answered(board) as c:
        heap_boot = c.diag()["mem_alloc"]
        reads = {"hello": c.hello, "status": c.status, "diag": c.diag, "log (last 10)": lambda: c.log(last=10)}
        signed = {"alarms": c.alarms, "clock (read)": c.clock}
        with stepped(board, c):
            for _ in range(REPEAT):
                for name, fn in reads.items():
                    requests.setdefault(name, []).append(cpu_ms(board, fn))
                requests.setdefault("auth (2 requests)", []).append(cpu_ms(board, lambda: c.authenticate("clinician")))
                for name, fn in signed.items():
                    requests.setdefault(name, []).append(cpu_ms(board, fn))
            # a programmer polling the pump: status after status (the loop above asks each read
            # after another request, so its status never finds what the last one parsed and kept)
            requests["status, polled"] = [cpu_ms(board, c.status) for _ in range(REPEAT)]
        diag = c.diag()
        # the live heap after every module call, from here on (it costs a collection per call)
        c.send("diag", {"heap_watch": True})
        for fn in (*reads.values(), lambda: c.authenticate("clinician"), *signed.values()):
            fn()
    idle_hour, idle_wall = fast_hour(board)  # the baseline: a stopped pump's main loop for an hour
    with answered(board) as c:
        c.refill(0, 20_000_000, CONC)
        c.program(mode="continuous", dose_mcg=DOSE)
        s0 = c.status()["therapy"]["strokes"]
    pumping, hour_wall = fast_hour(board)
    with answered(board) as c:
        strokes = c.status()["therapy"]["strokes"] - s0
        # a review judges the rolling 24 h windows (window_rules, schedule); a refusal also scans
        # when the change would fit (nine more window checks)
        c.authenticate("clinician")
        with stepped(board, c):
            for name, fn in (("program review (24 h windows)", lambda: _review(c, mode="continuous", dose_mcg=DOSE + 20)),
                             ("program refused over 24 h (+ retry scan)", lambda: _review(c, **_front_loaded(c)))):
                for _ in range(3):
                    requests.setdefault(name, []).append(cpu_ms(board, fn))
        c.program(mode="stop", reason="bench")
        peak = c.diag().get("mem_peak")
    per_stroke_ms = (pumping - idle_hour) * 1000 / HZ / max(strokes, 1)
    result = {
        "flash_s": round(flash_s, 1),
        "boot_wall_s": round(boot_wall, 1),
        "boot_cpu_ms": round(boot_cpu_ms, 1),
        "request_cpu_ms": {k: round(statistics.median(v), 2) for k, v in requests.items()},
        "stroke_cpu_ms": round(per_stroke_ms, 2),
        "strokes_in_hour": strokes,
        "hour_pumping_wall_s": round(hour_wall, 1),
        "hour_idle_wall_s": round(idle_wall, 1),
        "hour_cpu_ms": {"stopped": round(idle_hour * 1000 / HZ), "pumping": round(pumping * 1000 / HZ)},
        "fast_forward_x": round(3600 / idle_wall),
        "heap_after_boot_b": heap_boot,
        "heap_after_requests_b": diag["mem_alloc"],
        "heap_peak_b": peak,
        "targets": {"status_cpu_ms": 5, "heap_peak_b": 65536, "hour_wall_s": 15},
    }
    path = write_result("rp2040", result, opts)
    print(f"emulated RP2040 at 125 MHz (rp2040js): flash {flash_s:.0f} s, boot {boot_wall:.1f} s wall / "
          f"{boot_cpu_ms:.0f} ms CPU")
    for name, v in result["request_cpu_ms"].items():
        print(f"  {name:<14} {v:7.2f} ms CPU")
    print(f"  one stroke     {per_stroke_ms:7.2f} ms CPU ({strokes} strokes in the hour; an hour's main loop: "
          f"{idle_hour * 1000 / HZ:.0f} ms CPU stopped, {pumping * 1000 / HZ:.0f} ms pumping)")
    print(f"  heap: {heap_boot} B after boot, {diag['mem_alloc']} B after requests, peak {peak} B (target 65536)")
    print(f"  an hour: {hour_wall:.1f} s wall pumping, {idle_wall:.1f} s idle ({3600 / idle_wall:.0f}x)")
    print(f"  -> {path}")
    return 0


def _review(c: PumpClient, **args) -> None:
    """A program prepared (or refused by a limit): the review's CPU, nothing applied."""
    try:
        c.prepare("program", **args)
    except DeviceRefused as e:
        if e.code != 11:
            raise


def _front_loaded(c: PumpClient) -> dict:
    """A flex day of DOSE + 30 % whose 480 mcg/day half starts in a minute: the 24 h windows
    that hold the last hour refuse it (issue 16), though the day's total is within the limit."""
    s = c.status()
    m = ((s["clock"] + s["utc_offset_min"] * 60) // 60 + 1) % 1440
    steps = sorted([[m, 480], [(m + 720) % 1440, 40]])
    return {"mode": "flex", "days": {"all": steps}}


if __name__ == "__main__":
    sys.exit(main())

