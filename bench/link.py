"""Programmer round trip over the pty (spec §11: `status` median <= 5 ms) and heap after boot.

Numbers, not asserts: the machines are shared and noisy.
"""

from __future__ import annotations

import statistics
import sys
import time

from common import virtual_pico, write_result

from host_tools.client import PumpClient

ROUNDS = 500


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


def heap_after_boot(heap: str) -> dict:
    with virtual_pico(heap=heap) as (_, port):
        with PumpClient(port) as c:
            return c.diag()


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    with virtual_pico() as (_, port):
        ms = sorted(round_trips(port, rounds))
    rt = {
        "rounds": rounds,
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(ms[int(len(ms) * 0.9)], 3),
        "p99_ms": round(ms[int(len(ms) * 0.99)], 3),
        "max_ms": round(ms[-1], 3),
        "target_median_ms": 5.0,
    }
    heaps = {}
    for heap in ("192K", "64K"):
        d = heap_after_boot(heap)
        heaps[heap] = {"mem_alloc": d["mem_alloc"], "mem_free": d["mem_free"]}
    path = write_result("link", {"status_round_trip": rt, "heap_after_boot": heaps})
    print(f"status round trip over the pty ({rounds} rounds): median {rt['median_ms']} ms "
          f"(target <= 5 ms), p90 {rt['p90_ms']} ms, p99 {rt['p99_ms']} ms, max {rt['max_ms']} ms")
    for heap, h in heaps.items():
        print(f"heap after boot, -X heapsize={heap}: {h['mem_alloc']} B allocated, {h['mem_free']} B free")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
