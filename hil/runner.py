"""itbpump-hil: run regression scenarios against a rig, with JUnit XML for CI."""

from __future__ import annotations

import argparse
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hil import rig as rigs
from hil import scenario
from host_tools import NOT_A_MEDICAL_DEVICE


def run_one(path: Path, rig_spec: str) -> tuple[str, float, str | None]:
    t0 = time.monotonic()
    name = path.stem
    try:
        sc = scenario.load(path)
        name = sc["name"]
        rig = rigs.make_rig(rig_spec)
        try:
            scenario.run(sc, rig)
        finally:
            rig.close()
        error = None
    except Exception as e:  # a scenario failure is a result, not a crash of the runner
        error = f"{type(e).__name__}: {e}"
    return name, time.monotonic() - t0, error


def junit(results: list[tuple[str, float, str | None]], path: Path) -> None:
    suite = ET.Element("testsuite", name="itbpump-hil", tests=str(len(results)),
                       failures=str(sum(1 for r in results if r[2])))
    for name, secs, error in results:
        case = ET.SubElement(suite, "testcase", classname="hil", name=name, time=f"{secs:.3f}")
        if error:
            ET.SubElement(case, "failure", message=error.splitlines()[0]).text = error
    ET.SubElement(suite, "system-out").text = NOT_A_MEDICAL_DEVICE
    ET.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="itbpump-hil", description="Run HIL regression scenarios.",
                                 epilog=NOT_A_MEDICAL_DEVICE)
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenario files (JSON)")
    run.add_argument("scenarios", nargs="+", type=Path)
    run.add_argument("--rig", default="sim", help="'sim' (virtual Pico) or a fixture port")
    run.add_argument("--jobs", type=int, default=1, help="scenarios run in parallel (virtual Picos)")
    run.add_argument("--junit", type=Path, help="write JUnit XML here")
    a = ap.parse_args(argv)
    files = [p for s in a.scenarios for p in (sorted(s.glob("*.json")) if s.is_dir() else [s])]
    if not files:
        print("itbpump-hil: no scenario files given", file=sys.stderr)
        return 2
    results = []
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        for i, res in enumerate(pool.map(lambda p: run_one(p, a.rig), files), 1):
            name, secs, error = res
            print(f"[{i}/{len(files)}] {'FAIL' if error else 'pass'} {name} ({secs:.1f} s)"
                  + (f"\n    {error}" if error else ""), flush=True)
            results.append(res)
    failed = sum(1 for r in results if r[2])
    print(f"{len(results) - failed} passed, {failed} failed")
    if a.junit:
        junit(results, a.junit)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
