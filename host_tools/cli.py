"""itbpump: the clinician programmer command line (spec §9)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from host_tools import NOT_A_MEDICAL_DEVICE, ports, render
from host_tools.client import PumpClient
from host_tools.durations import format_duration, parse_duration
from host_tools.errors import PumpError, UsageError

EPILOG = f"""\
PORT is a serial device (/dev/ttyACM0, COM3) or "sim". Default: $ITBPUMP_PORT, else an
attached Pico (USB VID 0x2E8A), else the virtual Pico (started on demand).
Durations always carry a unit: 90s, 15m, 6h, 2d.

{NOT_A_MEDICAL_DEVICE}"""

SIM_FAULTS = {
    # name -> rig line to set it, rig line to clear it (None: momentary)
    "power-cut": None,
    "motor-stall": ("stall 1", "stall 0"),
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="itbpump", description="Program an ITB pump (real Pico or virtual Pico) over its serial link.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", help="serial device or 'sim' (see below)")
    ap.add_argument("--json", action="store_true", help="machine-readable output, never prompts")
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each answer (default 2)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("status", help="therapy, state, reservoir, alarms, dates, clock")

    sim = sub.add_parser("sim", help="start, stop and drive the virtual Pico")
    sim.add_argument("--state-dir", type=Path, help="the virtual Pico's flash and state "
                     "(default $ITBPUMP_SIM_DIR, else ~/.local/state/itbpump/sim)")
    simsub = sim.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    start = simsub.add_parser("start", help="boot the virtual Pico (returns once it answers)")
    start.add_argument("--clock", choices=("manual", "realtime"), default="realtime",
                       help="manual: time moves only with 'sim advance' (deterministic)")
    start.add_argument("--reservoir", type=int, choices=(20, 40), default=20, help="reservoir size in mL")
    start.add_argument("--fresh", action="store_true", help="erase its flash first: a new pump")
    simsub.add_parser("stop", help="power the virtual Pico off")
    simsub.add_parser("status", help="is it running, on which port, at what virtual time")
    adv = simsub.add_parser("advance", help="move the manual clock, e.g. 'sim advance 6h'")
    adv.add_argument("duration")
    fault = simsub.add_parser("fault", help=f"inject a fault: {', '.join(SIM_FAULTS)}")
    fault.add_argument("name")
    fault.add_argument("--off", action="store_true", help="clear a lasting fault")
    fault.add_argument("--off-for", help="power-cut: how long power stays off (e.g. 30s)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sim":
            return _sim(args)
        return _device_command(args)
    except PumpError as e:
        return _fail(args, str(e))
    except KeyboardInterrupt:
        return _fail(args, "interrupted")


def _fail(args: argparse.Namespace, reason: str) -> int:
    if args.json:
        print(json.dumps({"ok": False, "error": reason}))
    else:
        print(f"itbpump: {reason}", file=sys.stderr)
    return 1


def _emit(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


def _open_client(args: argparse.Namespace) -> PumpClient:
    port = ports.resolve(args.port)
    if port == "sim":
        from hil.vpico.control import SimControl, SimError

        try:
            port = SimControl().ensure_running()["port"]
        except SimError as e:
            raise PumpError(str(e)) from None
    return PumpClient(port, timeout=args.timeout)


COMMANDS: dict[str, Callable[[PumpClient, argparse.Namespace], int]] = {}


def _device_command(args: argparse.Namespace) -> int:
    with _open_client(args) as client:
        return COMMANDS[args.command](client, args)


def _status(client: PumpClient, args: argparse.Namespace) -> int:
    s = render.status_json(client.status(), client.port)
    return _emit(args, s, render.status_text(s, client.identity.get("board", "?")))


COMMANDS["status"] = _status


def _sim(args: argparse.Namespace) -> int:
    from hil.vpico.control import SimControl, SimError

    ctl = SimControl(args.state_dir)
    cmd = args.sim_command
    try:
        if cmd == "start":
            info = ctl.start(clock=args.clock, reservoir=args.reservoir, fresh=args.fresh)
            return _emit(args, info, f"virtual Pico running on {info['port']} ({info['clock']} clock, "
                         f"{info['reservoir_ml']} mL reservoir), state in {info['state_dir']}")
        if cmd == "stop":
            was = ctl.stop()
            return _emit(args, {"stopped": was}, "virtual Pico stopped" if was else "virtual Pico was not running")
        if cmd == "status":
            info = ctl.info()
            if info is None:
                return _emit(args, {"running": False}, f"virtual Pico not running (state in {ctl.paths.root})")
            info["running"] = True
            return _emit(args, info, f"virtual Pico running on {info['port']}, {info['clock']} clock, "
                         f"virtual time {format_duration(info['vnow_ms'])}, {info['boots']} boot(s)")
        if cmd == "advance":
            ms = parse_duration(args.duration, "advance duration")
            if ms <= 0:
                raise UsageError(f"advance duration must be more than 0, got '{args.duration}'")
            vnow = ctl.advance(ms)
            return _emit(args, {"vnow_ms": vnow}, f"advanced {format_duration(ms)}; virtual time {format_duration(vnow)}")
        if cmd == "fault":
            return _fault(args, ctl)
    except SimError as e:
        raise PumpError(str(e)) from None
    raise UsageError(f"unknown sim command {cmd}")


def _fault(args: argparse.Namespace, ctl: Any) -> int:
    name = args.name
    if name not in SIM_FAULTS:
        raise UsageError(f"unknown fault '{name}': known faults are {', '.join(SIM_FAULTS)}")
    lines = SIM_FAULTS[name]
    if lines is None:
        if args.off:
            raise UsageError(f"{name} is momentary: it has no --off")
        off_ms = parse_duration(args.off_for, "--off-for") if args.off_for else 0
        info = ctl.power_cut(off_ms)
        return _emit(args, info, f"power cut ({format_duration(off_ms)} off); "
                     f"power {'restored' if info['vm_on'] else 'still off'}, port {info['port']} unchanged")
    if args.off_for:
        raise UsageError("--off-for applies to power-cut only")
    ctl.rig(lines[1] if args.off else lines[0])
    return _emit(args, {"fault": name, "on": not args.off}, f"{name} {'cleared' if args.off else 'injected'}")


if __name__ == "__main__":
    sys.exit(main())
