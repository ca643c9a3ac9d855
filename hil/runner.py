"""itbpump-hil: run regression scenarios against a rig; a line per scenario, JUnit XML and an HTML report.

Exit codes: 0 all passed (skips allowed), 1 a scenario failed, 2 a usage error (a missing file, a
scenario that does not match the schema, an unknown back end): nothing ran.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from hil import rig as rigs
from hil import scenario
from hil.schema import SchemaError
from host_tools import NOT_A_MEDICAL_DEVICE

SCENARIO_SUFFIXES = (".toml", ".json")


def scenario_files(paths: list[Path]) -> list[Path]:
    """Files named, and the scenario files in folders named; a missing path is a usage error."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix in SCENARIO_SUFFIXES)
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"no scenario file or folder {p}")
    return files


def run_one(sc: dict, rig_spec: str, options: dict | None = None) -> scenario.Outcome:
    back_end = rigs.back_end(rig_spec)
    lacks = back_end.capabilities.lacks(sc["needs"])
    if lacks:
        out = scenario.Outcome(sc["name"], sc["file"], sc.get("proves", ""), status="skipped",
                               message=f"the {back_end.name} back end lacks {', '.join(lacks)}")
        return out
    try:
        rig = rigs.make_rig(rig_spec, **(options or {}))
    except rigs.Unavailable as e:
        return scenario.Outcome(sc["name"], sc["file"], sc.get("proves", ""), status="skipped", message=str(e))
    try:
        return scenario.run(sc, rig)
    finally:
        rig.close()


class Progress:
    """'[3/40] pass name (1.2 s)' lines, and a live 'running: ...' line on a terminal."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.stream = total, 0, stream or sys.stdout
        self.running: set[str] = set()
        self.lock = threading.Lock()
        self.tty = self.stream.isatty()

    def started(self, name: str) -> None:
        with self.lock:
            self.running.add(name)
            self._live()

    def finished(self, o: scenario.Outcome) -> None:
        with self.lock:
            self.running.discard(o.name)
            self.done += 1
            word = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}[o.status]
            clear = "\r\033[K" if self.tty else ""
            print(f"{clear}[{self.done}/{self.total}] {word} {o.name} ({o.seconds:.1f} s)"
                  + (f"\n    {o.message}" if o.message else ""), file=self.stream, flush=True)
            self._live()

    def _live(self) -> None:
        if self.tty and self.running:
            print(f"\r\033[K  running: {', '.join(sorted(self.running))}", end="", file=self.stream, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="itbpump-hil", description="Run HIL regression scenarios (docs/hil.md).",
                                 epilog=NOT_A_MEDICAL_DEVICE)
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenario files (TOML or JSON) or folders of them")
    run.add_argument("scenarios", nargs="+", type=Path)
    run.add_argument("--rig", default="sim", help="back end: sim (virtual Pico), rp2040 (emulated), "
                                                  "board (real Pico + fixture), or a fixture port")
    run.add_argument("--dut", metavar="PORT", help="--rig board: the pump board's serial port")
    run.add_argument("--fixture", metavar="PORT", help="--rig board: the fixture board's serial port (docs/hil.md)")
    run.add_argument("--jobs", type=int, default=1, help="scenarios run in parallel (one virtual Pico each)")
    run.add_argument("--report", type=Path, help="write junit.xml and report.html (with plots) into this folder")
    run.add_argument("--junit", type=Path, help="write JUnit XML here")
    run.add_argument("--seed", type=int, default=0, help="recorded in the reports (scenarios are deterministic)")
    check = sub.add_parser("check", help="validate scenario files without running them")
    check.add_argument("scenarios", nargs="+", type=Path)
    fixture = sub.add_parser("fixture", help="send one request to the fixture board (docs/hil.md), print its answer")
    fixture.add_argument("--port", required=True, help="the fixture board's serial port")
    fixture.add_argument("request", nargs="+", help="e.g. status, 'jumper on', 'cut 300', 'battery 2650'")
    a = ap.parse_args(argv)
    if a.command == "fixture":
        return _fixture_request(a.port, " ".join(a.request))
    try:
        files = scenario_files(a.scenarios)
        if not files:
            raise FileNotFoundError("no scenario files (*.toml, *.json) in " + ", ".join(map(str, a.scenarios)))
        loaded = [scenario.load(f) for f in files]
        if a.command == "run":
            board = rigs.back_end(a.rig) is rigs.BoardRig
            if (a.dut or a.fixture) and not board:
                raise rigs.RigError("--dut and --fixture are the board back end's: use --rig board")
            options = {k: v for k, v in (("dut", a.dut), ("fixture", a.fixture)) if v}
            if board:
                a.jobs = 1  # one bench runs one scenario at a time
    except (FileNotFoundError, SchemaError, rigs.RigError) as e:
        print(f"itbpump-hil: {e}", file=sys.stderr)
        return 2
    if a.command == "check":
        print(f"{len(loaded)} scenario files match the schema")
        return 0
    t0 = time.monotonic()
    progress = Progress(len(loaded))
    outcomes: dict[str, scenario.Outcome] = {}

    def job(sc: dict) -> scenario.Outcome:
        progress.started(sc["name"])
        return run_one(sc, a.rig, options)

    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        futures = [pool.submit(job, sc) for sc in loaded]
        for fut in as_completed(futures):
            o = fut.result()
            outcomes[o.file] = o
            progress.finished(o)
    ordered = [outcomes[sc["file"]] for sc in loaded]
    counts = {s: sum(o.status == s for o in ordered) for s in ("passed", "failed", "error", "skipped")}
    wall = time.monotonic() - t0
    print(", ".join(f"{n} {s}" for s, n in counts.items() if n or s == "passed") + f" in {wall:.1f} s")
    props = {"back_end": a.rig, "seed": a.seed, "jobs": a.jobs, "wall_s": f"{wall:.1f}"}
    first = next((o for o in ordered if o.props), None)
    if first:
        props.update(firmware_version=first.props.get("firmware_version", ""), back_end=first.props["back_end"])
    if a.report:
        from hil import report
        a.report.mkdir(parents=True, exist_ok=True)
        report.junit(ordered, a.report / "junit.xml", props)
        report.html_report(ordered, a.report / "report.html", props, jobs=a.jobs)
        print(f"report: {a.report / 'report.html'}, {a.report / 'junit.xml'}")
    if a.junit:
        from hil import report
        report.junit(ordered, a.junit, props)
    return 1 if counts["failed"] or counts["error"] else 0


def _fixture_request(port: str, request: str) -> int:
    import json

    from hil.board_rig import FixtureLink
    try:
        fx = FixtureLink(port)
        try:
            print(json.dumps(fx.request(request), sort_keys=True))
        finally:
            fx.close()
    except rigs.RigError as e:
        print(f"itbpump-hil: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
