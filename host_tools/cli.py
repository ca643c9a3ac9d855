"""itbpump: the clinician programmer command line (spec §9)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

from host_tools import NOT_A_MEDICAL_DEVICE, calc, ports, pump_facts, refusals, render, requests, review_detail
from host_tools.client import LOG_DEFAULT_LAST, PumpClient, is_prepare
from host_tools.durations import format_duration, parse_duration
from host_tools.errors import DeviceRefused, NoDevice, NoKey, PumpError, UsageError

EPILOG = f"""\
PORT is a serial device (/dev/ttyACM0, COM3) or "sim": the virtual Pico (a simulated pump),
which only 'itbpump sim start' starts. Default: $ITBPUMP_PORT, else an attached Pico (USB VID
0x2E8A), else an error: the programmer never talks to a simulated pump unless asked to.
Every output from a virtual Pico says so in its first line.
Durations always carry a unit: 90s, 15m, 6h, 2d. --json works before or after the command.
The user guide is docs/programmer.md in the source tree (docs/ has the rest).

{NOT_A_MEDICAL_DEVICE}"""

SIM_FAULTS = {
    # name -> rig line to set it, rig line to clear it (None: momentary)
    "power-cut": None,
    "motor-stall": ("stall 1", "stall 0"),
    "motor-stall-intermittent": ("stall 120", "stall 0"),  # the rotor sticks 20 min of every 2 h
    # battery voltage at the ADC, sim defaults (3000 mV nominal): ERI <= 2700, EOS <= 2500, fault < 2200
    "battery-eri": ("battery 2650", "battery 3000"),
    "battery-eos": ("battery 2400", "battery 3000"),
    "battery-fault": ("battery 2100", "battery 3000"),
    # flash and clock: found by the next boot (follow with power-cut)
    "corrupt-flash": "corrupt_flash",
    "clock-loss": "clock_loss",
}


JSON_HELP = "machine-readable output (field names in user units), never prompts"
TIMEOUT_S = (0.1, 60.0)  # the range --timeout accepts, seconds per answer


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one JSON document when --json is on the command line."""

    json_errors = False  # build_parser(json_errors=True) sets it on every parser of the tree

    def error(self, message: str) -> NoReturn:
        if self.json_errors:
            print(json.dumps({"ok": False, "error": f"{self.prog}: {message}",
                              "usage": " ".join(self.format_usage().split())}))
            sys.exit(2)
        super().error(message)


def _timeout(text: str) -> float:
    """--timeout: seconds per answer, a finite number within TIMEOUT_S."""
    lo, hi = TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not lo <= value <= hi:  # also false for nan
        raise argparse.ArgumentTypeError(f"must be a number of seconds from {lo:g} to {hi:g}, got '{text}'")
    return value


def _json_everywhere(parser: argparse.ArgumentParser, json_errors: bool) -> None:
    """--json after the command too (`itbpump status --json`): every command's parser takes it,
    and its help shows it there. SUPPRESS keeps a --json given before the command. With
    json_errors, every parser reports usage errors as JSON."""
    parser.json_errors = json_errors  # type: ignore[attr-defined]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                if not any("--json" in a.option_strings for a in child._actions):
                    child.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=JSON_HELP)
                _json_everywhere(child, json_errors)


def build_parser(json_errors: bool = False) -> argparse.ArgumentParser:
    """The command line; json_errors: usage errors as one JSON document (--json was given)."""
    ap = Parser(
        prog="itbpump", description="Program an ITB pump (real Pico or virtual Pico) over its serial link.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", help="serial device or 'sim' (see below)")
    ap.add_argument("--json", action="store_true", help=JSON_HELP)
    lo, hi = TIMEOUT_S
    ap.add_argument("--timeout", type=_timeout, default=2.0, metavar="SECONDS",
                    help=f"seconds to wait for each answer, {lo:g}..{hi:g} (default 2)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("status", help="therapy, state, reservoir, alarms, dates, clock")
    alarms = sub.add_parser("alarms", help="active alarms; --ack acknowledges (silences) them")
    alarms.add_argument("--ack", action="store_true",
                        help="silence every active alarm (each stays listed until its condition clears)")
    sub.add_parser("alarm-test", help="play the critical and non-critical alarm tones once")
    log = sub.add_parser("log", help="the event log: newest entries, oldest first")
    log.add_argument("--last", type=_log_count, default=None, metavar="N",
                     help=f"how many entries, 1..{LOG_CAPACITY} (default {LOG_DEFAULT_LAST})")

    sim = sub.add_parser("sim", help="start, stop and drive the virtual Pico")
    state_dir = argparse.ArgumentParser(add_help=False)
    state_dir.add_argument("--state-dir", type=Path, help="the virtual Pico's flash and state "
                           "(default $ITBPUMP_SIM_DIR, else ~/.local/state/itbpump/sim)")
    simsub = sim.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    start = simsub.add_parser("start", parents=[state_dir], help="boot the virtual Pico (returns once it answers)")
    start.add_argument("--clock", choices=("manual", "realtime"), default="realtime",
                       help="manual: time moves only with 'sim advance' (deterministic)")
    start.add_argument("--reservoir", type=int, choices=(20, 40),
                       help="reservoir size in mL for a new pump (default 20; a pump keeps its size)")
    start.add_argument("--fresh", action="store_true", help="erase its flash first: a new pump")
    simsub.add_parser("stop", parents=[state_dir], help="power the virtual Pico off")
    simsub.add_parser("status", parents=[state_dir], help="is it running, on which port, at what virtual time")
    adv = simsub.add_parser("advance", parents=[state_dir], help="move the manual clock, e.g. 'sim advance 6h'")
    adv.add_argument("duration")
    fault = simsub.add_parser("fault", parents=[state_dir], help=f"inject a fault: {', '.join(SIM_FAULTS)}")
    fault.add_argument("name")
    fault.add_argument("--off", action="store_true",
                       help="clear a lasting fault (battery faults: back to 3000 mV)")
    fault.add_argument("--off-for", help="power-cut: how long power stays off (e.g. 30s)")

    _therapy_parsers(sub)
    _json_everywhere(ap, json_errors)
    return ap


CONFIRM_NOTE = """\
Two-phase: the pump first reviews the request and changes nothing. The review shows the
current and the new therapy side by side (daily dose in mcg/day, mL/day, alarm date, refill
date), the % change against the lowest daily dose of the last 24 h, the warnings, and the
overrides the change would use. Then "Apply this change? [y/N]": only y or yes applies it
(the programmer commits the review's token, and the pump applies exactly what it reviewed);
anything else, end of input, or no terminal to ask on applies nothing.
  --yes      apply without asking (for scripts)
  --dry-run  show the pump's review and apply nothing (the port is opened; no commit is sent)
  --json     never asks: without --yes it prints the review and applies nothing;
             with --yes it applies and prints the pump's answer with the review
A refused request names the limit that bound it; where the limit allows an override, the
message says to rerun with --override "REASON" (the reason is logged).
Exit code: 0 when applied, declined, or shown by --dry-run (nothing failed); 1 when the input
is invalid, the pump refuses, a key is missing or the link fails."""

PTM_NOTE = """\
Without options, show the patient-bolus settings and how many were used in the last 24 h.
Enabling or disabling is two-phase, as for program (see below)."""


def _therapy_parsers(sub: Any) -> None:
    """program, bolus, prime, refill, clock (spec §9); calc runs on the host only."""
    confirm = argparse.ArgumentParser(add_help=False)
    g = confirm.add_argument_group("confirmation")
    g.add_argument("--yes", action="store_true",
                   help="apply after the review without asking (for scripts); see the note below")
    g.add_argument("--dry-run", action="store_true",
                   help="show the pump's review and apply nothing (never commits)")
    override = argparse.ArgumentParser(add_help=False)
    override.add_argument("--override", metavar="REASON",
                          help="proceed past a safety limit that allows an override (initial cap, decrease, "
                               f"ceiling); 1..{requests.REASON_MAX} characters, logged with the change")

    def leaf(parent: Any, name: str, help: str, description: str, confirmed: bool = True,
             overridable: bool = False) -> argparse.ArgumentParser:
        epilog = f"{CONFIRM_NOTE}\n\n{NOT_A_MEDICAL_DEVICE}" if confirmed else NOT_A_MEDICAL_DEVICE
        parents = ([confirm] if confirmed else []) + ([override] if overridable else [])
        return parent.add_parser(name, help=help, description=description, epilog=epilog, parents=parents,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)

    prog = sub.add_parser("program", help="program the therapy: continuous, flex, periodic or stop",
                          description="Program the therapy. Doses are in mcg/day (boluses in mcg).",
                          epilog=NOT_A_MEDICAL_DEVICE)
    modes = prog.add_subparsers(dest="program_mode", required=True, metavar="MODE")

    p = leaf(modes, "continuous", "one daily dose, delivered evenly",
             "One daily dose, delivered evenly over the day.", overridable=True)
    p.add_argument("--dose", required=True, metavar="MCG_PER_DAY", help="daily dose, whole mcg/day")

    p = leaf(modes, "flex", f"a time-of-day schedule: up to {requests.MAX_FLEX_STEPS} steps per day",
             f"A time-of-day schedule of up to {requests.MAX_FLEX_STEPS} steps per day. Each step runs from its start\n"
             "(local time HH:MM, 00:00-23:59) until the next step; before a day's first step the\n"
             "previous day's last step continues. Without --day the schedule is the same every day.\n"
             "With --day, the steps after a --day belong to those days, and every day needs steps:\n\n"
             "  itbpump program flex --step 07:00=300 --step 22:00=600\n"
             "  itbpump program flex --day weekdays --step 07:00=300 --step 22:00=600 \\\n"
             "                       --day weekend --step 09:00=300 --step 23:00=600", overridable=True)
    p.usage = ("itbpump program flex [--day DAYS] --step HH:MM=MCG_PER_DAY [--step ...] "
               "[--day DAYS --step ...] [--override REASON] [--yes] [--dry-run]")
    p.add_argument("--step", action=requests.FlexPlanAction, dest="flex_plan", required=True,
                   metavar="HH:MM=MCG_PER_DAY", help="a step: local start time = daily dose (repeat the flag)")
    p.add_argument("--day", action=requests.FlexPlanAction, dest="flex_plan", metavar="DAYS",
                   help="the days the following steps are for: mon..sun, weekdays, weekend or all, "
                        "comma-separated (e.g. mon,wed,fri)")

    p = leaf(modes, "periodic", "a background rate plus a bolus every interval",
             "A background daily dose plus a bolus of --bolus mcg every --every, each delivered\n"
             "over --over (shorter than --every). Durations carry their unit: 90s, 15m, 6h, 2d.",
             overridable=True)
    p.add_argument("--basal", required=True, metavar="MCG_PER_DAY", help="background dose, whole mcg/day")
    p.add_argument("--bolus", required=True, metavar="MCG", help="each bolus, whole mcg")
    p.add_argument("--every", required=True, metavar="DURATION", help="bolus interval, e.g. 6h")
    p.add_argument("--over", required=True, metavar="DURATION", help="each bolus delivered over, e.g. 15m")
    p.add_argument("--start", metavar="HH:MM", help="local time of the first bolus (default: now)")

    p = leaf(modes, "stop", "stop delivery (withdrawal risk: needs a reason)",
             "Stop delivery. Stopping baclofen abruptly risks withdrawal: the reason is required\n"
             "and logged; it is also the override the decrease guard asks for.")
    p.add_argument("--reason", required=True, metavar="TEXT",
                   help=f"why therapy stops, 1..{requests.REASON_MAX} characters (logged)")

    p = leaf(sub, "bolus", "a clinician single bolus on top of the running therapy",
             "A single bolus of --dose mcg over --over, on top of the running therapy, which goes\n"
             "on unchanged during and after it.")
    p.add_argument("--dose", required=True, metavar="MCG", help="bolus dose, whole mcg")
    p.add_argument("--over", required=True, metavar="DURATION", help="delivered over, e.g. 15m")

    p = leaf(sub, "prime", "priming bolus after a catheter change",
             "Fill the catheter and the pump tubing at the maximum rate after a catheter change;\n"
             "therapy pauses meanwhile, then resumes.")
    p.add_argument("--catheter-volume", required=True, metavar="ML",
                   help="catheter volume in mL (to the nL: at most 6 decimals)")

    p = leaf(sub, "refill", "record a refill: removed, added, concentration",
             "Record a refill: the volume removed (the pump compares it with its own estimate),\n"
             "the volume added and its concentration. Volumes in mL, at most 6 decimals.")
    p.add_argument("--removed", required=True, metavar="ML", help="volume withdrawn from the reservoir, mL")
    p.add_argument("--added", required=True, metavar="ML", help="volume put in, mL")
    p.add_argument("--concentration", required=True, metavar="MCG_PER_ML", help="of the drug added, mcg/mL")

    p = leaf(sub, "clock", "read or set the pump clock and its UTC offset",
             "Without options, read the clock. Local time = UTC + the offset; changing the offset\n"
             "(daylight saving) moves flex schedules in UTC, and the answer says how. A change is\n"
             "reviewed (current and new) and confirmed like a programming change.")
    p.add_argument("--set", metavar="ISO8601", help="set the clock, with a zone: 2024-03-10T14:30:00Z or "
                   "2024-03-10T15:30:00+01:00")
    p.add_argument("--utc-offset", metavar="+HH:MM", help="local-time offset, -12:00..+14:00 (e.g. +01:00, -05:00)")

    p = leaf(sub, "limits", "show or set the safety limits",
             "Without options, show the safety limits and the 24 h reference doses. With options,\n"
             "set them: the change is reviewed (current and new) and confirmed like a programming\n"
             "change, then applied and logged. --hard-max is a factory limit: it needs the service key.")
    p.add_argument("--origin", metavar="|".join(requests.PROFILES),
                   help="patient profile: sets the titration range ({})".format(
                       requests.TITRATION_RANGES_TEXT.replace("%", "%%")))
    p.add_argument("--titration", metavar="PCT",
                   help="daily-dose increase allowed over the lowest dose of the last 24 h, whole %%")
    p.add_argument("--low-reservoir", metavar="ML", help="low-reservoir alarm threshold, {:.1f}..{:.1f} mL".format(
        *(nl / 1_000_000 for nl in requests.LOW_RESERVOIR_NL)))
    p.add_argument("--bolus-cap", metavar="MCG", help="largest clinician single bolus, whole mcg")
    p.add_argument("--initial-cap", metavar="MCG",
                   help="largest daily dose when there was no dose in the last 24 h, whole mcg/day")
    p.add_argument("--hard-max", metavar="MCG", help="daily dose never exceeded, whole mcg/day (service key)")

    p = leaf(sub, "ptm", "show, enable or disable patient boluses (PTM)",
             f"{PTM_NOTE}\n{requests.PTM_WARNING[0].upper()}{requests.PTM_WARNING[1:]}: enabling warns.\n\n"
             "  itbpump ptm --enable --dose 25 --over 10m --max-per-day 4 --lockout 3h",
             overridable=True)
    onoff = p.add_mutually_exclusive_group()
    onoff.add_argument("--enable", action="store_true", help="enable patient boluses with the settings below")
    onoff.add_argument("--disable", action="store_true", help="disable patient boluses")
    p.add_argument("--dose", metavar="MCG", help="each patient bolus, whole mcg")
    p.add_argument("--over", metavar="DURATION", help="each delivered over, e.g. 10m")
    p.add_argument("--max-per-day", metavar="N", help="at most N patient boluses in any 24 h")
    p.add_argument("--lockout", metavar="DURATION", help="least time from one patient bolus to the next, e.g. 3h")

    leaf(sub, "patient-bolus", "give a patient bolus within the PTM limits",
         "Give a patient bolus as programmed with 'ptm --enable' (applied at once). A refusal says\n"
         "when the next one is allowed.", confirmed=False)

    fl = sub.add_parser("flash", help="deploy the firmware to a real Pico (mpy-cross + mpremote) and provision keys",
                        description="Compile the firmware with mpy-cross, copy it to a Pico in its REPL with\n"
                        "mpremote, give a new board its role keys (filed in the host key file first), reset\n"
                        "it and check that it answers with its serial and accepts the clinician key.\n"
                        "A board running the pump firmware must be powered up with the maintenance\n"
                        "jumper (GP22 to GND) first: the firmware keeps the REPL closed. docs/flashing.md.",
                        epilog=NOT_A_MEDICAL_DEVICE, formatter_class=argparse.RawDescriptionHelpFormatter)
    fl.add_argument("--port", default=argparse.SUPPRESS, help="the Pico's serial device (default: the attached one)")
    fl.add_argument("--dry-run", action="store_true", help="build and show the plan; open no port, write no key")
    fl.add_argument("--new-keys", action="store_true",
                    help="replace keys the board has but this host does not hold (locks out their holders)")
    fl.add_argument("--fixture", action="store_true",
                    help="flash the HIL fixture board's firmware (hil/fixture/, docs/hil.md) instead of the pump's")

    c = sub.add_parser("calc", help="clinical arithmetic on the host (no pump needed)", epilog=NOT_A_MEDICAL_DEVICE)
    csub = c.add_subparsers(dest="calc_command", required=True, metavar="CALC")
    p = leaf(csub, "start-dose", "starting daily dose from the screening bolus",
             "Starting daily dose after an effective screening bolus (label): 2 x the screening\n"
             "bolus over 24 h, or the screening dose itself if its effect lasted more than 8 h.\n"
             "No response to 100 mcg means the patient is not a candidate. Opens no port.", confirmed=False)
    p.add_argument("--screening", required=True, metavar="MCG", help="the effective screening bolus: 50, 75 or 100")
    p.add_argument("--effect-hours", required=True, metavar="H", help="how long its effect lasted, hours")


def _join_negative_values(argv: list[str]) -> list[str]:
    """'--utc-offset -05:00' -> '--utc-offset=-05:00': argparse would take -05:00 for an option."""
    out: list[str] = []
    for tok in argv:
        if out and out[-1] == "--utc-offset" and re.fullmatch(r"-\d.*", tok):
            out[-1] = f"--utc-offset={tok}"
        else:
            out.append(tok)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = _join_negative_values(sys.argv[1:] if argv is None else list(argv))
    json_errors = "--json" in (argv[:argv.index("--")] if "--" in argv else argv)
    try:
        code = _run(build_parser(json_errors).parse_args(argv))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        # the reader went away (itbpump log | head -3): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "sim":
            return _sim(args)
        if args.command == "calc":
            return _calc(args)
        if args.command == "flash":
            return _flash(args)
        if args.command in requests.COMMANDS:
            return _therapy(args)
        return _device_command(args)
    except DeviceRefused as e:
        return _refused(args, e)
    except NoKey as e:  # one line: whose key is missing, for which pump, and the key file's path
        return _fail(args, str(e), {"role": e.role, "serial": e.serial, "key_file": str(e.path)})
    except PumpError as e:
        return _fail(args, str(e))
    except KeyboardInterrupt:
        return _fail(args, "interrupted")


def _fail(args: argparse.Namespace, reason: str, extra: dict | None = None) -> int:
    if args.json:
        print(json.dumps({"ok": False, "error": reason, **(extra or {})}))
    else:
        print(f"itbpump: {reason}", file=sys.stderr)
    return 1


def _refused(args: argparse.Namespace, e: DeviceRefused) -> int:
    """A refusal: one line in the user's words and units (host_tools/refusals.py): the option
    and the bound, or the limit and how to proceed past it where an override would."""
    cmd = _device_cmd(args)
    may = _takes_override(args)
    return _fail(args, refusals.text(cmd, e, may), refusals.json_doc(cmd, e, may))


def _device_cmd(args: argparse.Namespace) -> str:
    """The device request a command line sends (for the field table)."""
    return {"patient-bolus": "patient_bolus", "alarm-test": "alarm_test"}.get(args.command, args.command)


def _takes_override(args: argparse.Namespace) -> bool:
    return (args.command == "program" and args.program_mode != "stop") or (
        args.command == "ptm" and getattr(args, "enable", False))


def _emit(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


VIRTUAL_BOARD = "virtual-pico"  # the board name a virtual Pico gives in its hello


def _open_client(args: argparse.Namespace) -> PumpClient:
    """The pump named by --port / $ITBPUMP_PORT, or the one attached; never a virtual Pico unless
    asked for ("sim"), and never one that is not running. Text output from a virtual Pico starts
    with a line that says so."""
    port = ports.resolve(args.port)
    if port is None:
        raise NoDevice(ports.NO_PUMP)
    if port == "sim":
        from hil.vpico.control import SimControl, SimError

        sim = SimControl()
        try:
            info = sim.info()
        except SimError as e:  # it runs but does not answer: say so, start no second one
            raise PumpError(str(e)) from None
        if info is None:
            raise NoDevice(f"--port sim: no virtual Pico is running (state in {sim.paths.root}); "
                           f"start one with: itbpump sim start")
        port = info["port"]
    client = PumpClient(port, timeout=args.timeout)
    if client.identity.get("board") == VIRTUAL_BOARD and not args.json:
        print(f"virtual Pico {client.identity.get('serial') or ''} on {client.port}: "
              f"a simulated pump, not a patient's".replace("  ", " "), flush=True)
    return client


COMMANDS: dict[str, Callable[[PumpClient, argparse.Namespace], int]] = {}


def _device_command(args: argparse.Namespace) -> int:
    with _open_client(args) as client:
        return COMMANDS[args.command](client, args)


def _status(client: PumpClient, args: argparse.Namespace) -> int:
    board = client.identity.get("board", "?")
    s = {**render.status_json(client.status(), client.port), "board": board}
    return _emit(args, s, render.status_text(s, board))


COMMANDS["status"] = _status

# entries the pump keeps whatever they hold (firmware evlog.ENTRIES; spec §6: at least 1000)
LOG_CAPACITY: int = pump_facts.fact("ENTRIES")


def _log_count(text: str) -> int:
    """--last N: checked when parsing, before any port is opened."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= LOG_CAPACITY:
        raise argparse.ArgumentTypeError(f"must be a whole number 1..{LOG_CAPACITY} "
                                         f"(the log holds {LOG_CAPACITY} entries), got '{text}'")
    return n


def _log(client: PumpClient, args: argparse.Namespace) -> int:
    raw = client.log(args.last)
    return _emit(args, render.log_json(raw), render.log_text(raw))


COMMANDS["log"] = _log


def _alarms(client: PumpClient, args: argparse.Namespace) -> int:
    a = render.alarms_json(client.alarms(ack=args.ack))
    return _emit(args, a, render.alarms_text(a))


def _alarm_test(client: PumpClient, args: argparse.Namespace) -> int:
    raw = client.alarm_test()
    return _emit(args, raw, render.alarm_test_text(raw))


COMMANDS["alarms"] = _alarms
COMMANDS["alarm-test"] = _alarm_test


def _therapy(args: argparse.Namespace) -> int:
    """Validate and convert first (no port is opened for bad input), then: a programming request
    is prepared, reviewed and, once confirmed, committed; the others are sent at once."""
    cmd, req = requests.build(args)
    if is_prepare(cmd, req):
        return _two_phase(args, cmd, req)
    if cmd in ("limits", "clock") and req:
        return _reviewed_setting(args, cmd, req)
    with _open_client(args) as client:
        if cmd == "clock":
            answer = client.clock(**req)
            return _emit(args, render.clock_json(answer),
                         render.clock_answer_text(answer, "Pump clock" if not req else requests.describe(cmd, req)))
        if cmd == "limits":
            answer = client.limits(**req)
            return _emit(args, render.answer_json(answer), render.limits_text(answer, setting=bool(req)))
        if cmd == "ptm":
            answer = client.ptm_status()
            return _emit(args, render.answer_json(answer), render.ptm_text(answer))
        if cmd == "patient_bolus":
            answer = client.patient_bolus()
            return _emit(args, render.answer_json(answer), render.patient_bolus_text(answer))
    raise UsageError(f"'{args.command}' is not a pump command")


NOT_APPLIED = "not applied: the pump keeps its current therapy"


def _two_phase(args: argparse.Namespace, cmd: str, req: dict) -> int:
    """prepare -> the review -> confirm -> commit (spec §4, §9). Only 'y'/'yes' at the prompt, or
    --yes, sends the commit; --dry-run and --json without --yes never do."""
    if cmd == "ptm" and req.get("enable"):
        # before the pump's review, so the warning is seen even if the request goes no further
        print(f"warning: {requests.PTM_WARNING}", file=sys.stderr if args.json else sys.stdout, flush=True)
    with _open_client(args) as client:
        review = client.prepare(cmd, **req)
        if not args.json:
            print(f"{requests.describe(cmd, req)}\n{render.review_text(review, req)}", flush=True)
        held = _hold(args, render.review_json(review), NOT_APPLIED)
        if held is not None:
            return held
        answer = client.commit(review["token"])
    if args.json:
        return _emit(args, {"applied": True, **render.answer_json(answer),
                            "review": render.review_json(review)}, "")
    print(render.committed_text(answer))
    return 0


def _hold(args: argparse.Namespace, review_json: dict, not_applied: str) -> int | None:
    """After a review: the exit code when nothing is to be applied (--dry-run, --json without
    --yes, or anything but yes at the prompt), else None: apply."""
    if args.dry_run or (args.json and not args.yes):
        if args.json:
            return _emit(args, {"applied": False, "dry_run": bool(args.dry_run), "review": review_json}, "")
        print(f"dry run: {not_applied}")
        return 0
    if not args.yes and not _confirm():
        print(not_applied)
        return 0
    return None


def _reviewed_setting(args: argparse.Namespace, cmd: str, req: dict) -> int:
    """limits and clock change safety margins and therapy timing: the programmer reads the pump's
    settings, shows what changes and asks, as for a two-phase change; then the pump applies them
    in one request (its own checks refuse a bad value as before)."""
    with _open_client(args) as client:
        now = client.limits() if cmd == "limits" else client.clock()
        rows = review_detail.setting_rows(cmd, req, now)
        if not args.json:
            lw = max(len(r[0]) for r in rows) + 2
            cw = max(len(r[1]) for r in [*rows, ("", "current", "")]) + 3
            print("\n".join([requests.describe(cmd, req), f"Review: {cmd}", f"  {'':<{lw}}{'current':<{cw}}new",
                             *[f"  {a:<{lw}}{b:<{cw}}{c}".rstrip() for a, b, c in rows],
                             f"  {'pump':<{lw}}{client.identity.get('serial')}"]), flush=True)
        held = _hold(args, review_detail.setting_json(cmd, req, now), f"not applied: the pump keeps its {cmd} settings")
        if held is not None:
            return held
        answer = client.limits(**req) if cmd == "limits" else client.clock(**req)
    if cmd == "clock":
        return _emit(args, {"applied": True, **render.clock_json(answer)},
                     render.clock_answer_text(answer, f"applied: {requests.describe(cmd, req)}"))
    return _emit(args, {"applied": True, **render.answer_json(answer)}, render.limits_text(answer, setting=True))


def _confirm() -> bool:
    """Ask on the terminal; no terminal, end of input or Ctrl-C count as no."""
    if not sys.stdin.isatty():
        print("Apply this change? [y/N] no terminal to answer on (use --yes in scripts)")
        return False
    try:
        answer = input("Apply this change? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def _calc(args: argparse.Namespace) -> int:
    r = calc.start_dose_text(args.screening, args.effect_hours)
    text = "\n".join([
        f"Starting daily dose: {r.start_dose_mcg_per_day} mcg/day",
        f"  rule: {r.rule}",
        f"  note: {calc.NOT_A_CANDIDATE}",
        NOT_A_MEDICAL_DEVICE,
    ])
    return _emit(args, r._asdict(), text)


def _flash(args: argparse.Namespace) -> int:
    from host_tools import flash

    port = ports.resolve(args.port)
    if port == "sim" and args.dry_run:
        port = None  # a dry run opens no port: the plan is the same
    if port == "sim":
        return _fail(args, "flash deploys to a real Pico; the virtual Pico builds the firmware itself at each start")
    if port is None and not args.dry_run:
        return _fail(args, "no Pico attached (USB VID 0x2E8A): connect one or give --port")
    # the boot after the reset gets as many request timeouts as a Pico's boot takes at 2 s each
    # (a slower board, e.g. an emulated RP2040, is given --timeout in proportion)
    verify_s = flash.VERIFY_S * args.timeout / 2.0
    if args.fixture:
        r = flash.flash_fixture(port, dry_run=args.dry_run, verify_s=max(flash.VERIFY_S, verify_s))
        if not args.dry_run and not r["verified"]:
            return _fail(args, f"fixture firmware copied to {port}, but it did not answer hello after the reset", r)
        return _emit(args, r, render.flash_text(r))
    r = flash.flash(port, dry_run=args.dry_run, new_keys=args.new_keys, verify_s=max(flash.VERIFY_S, verify_s))
    if not args.dry_run and not r["verified"] and not r["jumper"]:
        return _fail(args, f"firmware copied to {port} ({r['serial']}), but it did not answer after the reset: "
                     f"check the board, then: itbpump --port {port} status", r)
    return _emit(args, r, render.flash_text(r))


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
            now = ctl.status()
            if not now["running"]:
                return _emit(args, now, f"virtual Pico not running (state in {ctl.paths.root})")
            if not now["answering"]:  # alive, holding the folder, silent: say so, and fail
                return _fail(args, now["error"], {k: v for k, v in now.items() if k != "error"})
            return _emit(args, now, f"virtual Pico running on {now['port']}, {now['clock']} clock, "
                         f"virtual time {format_duration(now['vnow_ms'])}, {now['boots']} boot(s)")
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
    if isinstance(lines, str):  # a supervisor operation on the board's flash or RTC
        if args.off or args.off_for:
            raise UsageError(f"{name} has no --off/--off-for: it takes effect at the next boot")
        getattr(ctl, lines)()
        return _emit(args, {"fault": name, "on": True}, f"{name} injected: the next boot (power-cut) finds it")
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
