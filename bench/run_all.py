"""`make bench`: run every benchmark in bench/, then print the figures they measured.

Each bench prints its own detail and writes JSON (bench/results/ unless --results DIR); this
collects the headline figures from that JSON in one block. --quick is passed on (shorter runs,
every figure: the test suite's smoke test). Exits 1 when a bench failed or a figure is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from common import options

from host_tools.pump_facts import stroke_nl

HERE = Path(__file__).resolve().parent
BENCHES = ["link.py", "therapy.py", "persistence.py", "rp2040.py"]


def figures(results: Path) -> list[str]:
    """The headline figures, one line each, from the benches' JSON (KeyError/OSError if missing)."""
    link, therapy, wear = (json.loads((results / f"{n}.json").read_text()) for n in ("link", "therapy", "persistence"))
    out = []
    for heap, rt in link["status_round_trip"].items():
        out.append(f"status round trip, heap {heap}: median {rt['median_ms']} ms, p99 {rt['p99_ms']} ms "
                   f"(target median <= {rt['target_median_ms']:g} ms, {rt['rounds']} rounds)")
    sp = therapy["speed"]
    for where, suffix in (("on disk", ""), ("in RAM", "_ram")):
        if f"continuous{suffix}" in sp:
            c, f = sp[f"continuous{suffix}"], sp[f"flex{suffix}"]
            out.append(f"{c['days']}-day run {where} ({c['state_in']}): continuous {c['wall_s']} s, "
                       f"flex {f['wall_s']} s (target <= 10 s for 180 d)")
    for heap, m in therapy["memory"].items():
        budget = ", the budget" if heap == therapy["budget_heap"] else ""
        out.append(f"heap {heap}{budget}: {'runs' if m['completed'] else 'FAILED'} {m['days']} d; "
                   f"{m['boot_mem_alloc']} B after boot, peak {m['peak_mem_alloc']} B (after gc)")
    for name, a in therapy["accuracy"].items():
        c = therapy["accuracy_curves"][name]
        worst = max(w["max_abs_err_strokes"] for w in a["windows_h"].values())
        out.append(f"accuracy {name} ({a['days']} d): 1 h {c['1h']['min_pct']:+.2f}..{c['1h']['max_pct']:+.2f} %, "
                   f"24 h {c['24h']['min_pct']:+.3f}..{c['24h']['max_pct']:+.3f} %, worst window {worst:.3f} stroke, "
                   f"{a['samples_not_floor_of_programmed']} samples off floor(V/{stroke_nl()})")
    out.append("flash writes per day: " + ", ".join(f"{n} {w['per_day']}" for n, w in wear["flash_writes"].items()))
    cuts = wear["power_cuts"]
    out.append(f"power cuts: {cuts['cuts']}, each {cuts['min_nl']}..{cuts['max_nl']} nL below the truth "
               f"(one checkpoint {cuts['checkpoint_nl']} nL), above it: {'YES' if cuts['estimate_ever_above_truth'] else 'never'}")
    rp = results / "rp2040.json"
    if rp.is_file():  # only with the RP2040 test equipment, and not in --quick
        r = json.loads(rp.read_text())
        out.append(f"emulated RP2040 at 125 MHz: status {r['request_cpu_ms']['status']} ms CPU (target <= 5 ms), "
                   f"stroke {r['stroke_cpu_ms']} ms, boot {r['boot_cpu_ms']} ms; heap {r['heap_after_boot_b']} B "
                   f"after boot, peak {r['heap_peak_b']} B (target <= 65536); an idle hour in "
                   f"{r['hour_idle_wall_s']} s ({r['fast_forward_x']}x)")
    return out


def main() -> int:
    opts = options(__doc__)
    for n in BENCHES:  # a bench that fails must not leave an older run's figures to be read
        (opts.results / n.replace(".py", ".json")).unlink(missing_ok=True)
    worst = 0
    for name in BENCHES:
        print(f"== {name}", flush=True)
        worst = max(worst, subprocess.call([sys.executable, str(HERE / name), *sys.argv[1:]], cwd=HERE))
    print("== figures" + (" (--quick: shorter runs)" if opts.quick else ""))
    try:
        for line in figures(opts.results):
            print(f"  {line}")
    except (OSError, KeyError, TypeError, ValueError) as e:
        print(f"  MISSING: {type(e).__name__}: {e}")
        worst = max(worst, 1)
    return worst


if __name__ == "__main__":
    sys.exit(main())
