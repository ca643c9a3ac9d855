"""Programmer round trip over the pty (spec §11: `status` median <= 5 ms) and heap after boot.

The round trip is timed on a board at the default heap (what the CLI starts) and on one at the
firmware's budget heap (docs/architecture.md, "Memory"), where the GC runs more often. Heap after
boot is `diag`'s, at both sizes. Numbers, not asserts: the machines are shared and noisy.
"""

from __future__ import annotations

import statistics
import sys
import time

from common import BUDGET_HEAP, DEFAULT_HEAP, options, virtual_pico, write_result

from host_tools.client import PumpClient

ROUNDS = 500
QUICK_ROUNDS = 50
HEAPS = (DEFAULT_HEAP, BUDGET_HEAP)


def round_trips(port: str, rounds: int) -> list[float]:
    with PumpClient(port) as c:
        for _ in range(20):
            c.status()  # warm up
        samples = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            c.status()
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


def board_figures(heap: str, rounds: int) -> tuple[dict, dict]:
    """(status round trip, heap after boot) on a fresh board with this heap."""
    with virtual_pico(heap=heap) as (_, port):
        with PumpClient(port) as c:
            d = c.diag()
        ms = sorted(round_trips(port, rounds))
    rt = {
        "rounds": rounds,
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(ms[int(len(ms) * 0.9)], 3),
        "p99_ms": round(ms[int(len(ms) * 0.99)], 3),
        "max_ms": round(ms[-1], 3),
        "target_median_ms": 5.0,
    }
    return rt, {"mem_alloc": d["mem_alloc"], "mem_free": d["mem_free"]}


def main() -> int:
    opts = options(__doc__)
    rounds = QUICK_ROUNDS if opts.quick else ROUNDS
    trips, heaps = {}, {}
    for heap in HEAPS:
        trips[heap], heaps[heap] = board_figures(heap, rounds)
    path = write_result("link", {"status_round_trip": trips, "heap_after_boot": heaps,
                                 "budget_heap": BUDGET_HEAP}, opts)
    for heap, rt in trips.items():
        print(f"status round trip over the pty, -X heapsize={heap} ({rounds} rounds): median {rt['median_ms']} ms "
              f"(target <= 5 ms), p90 {rt['p90_ms']} ms, p99 {rt['p99_ms']} ms, max {rt['max_ms']} ms")
    for heap, h in heaps.items():
        budget = " (the budget)" if heap == BUDGET_HEAP else ""
        print(f"heap after boot, -X heapsize={heap}{budget}: {h['mem_alloc']} B allocated, {h['mem_free']} B free")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
