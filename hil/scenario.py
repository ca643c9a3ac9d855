"""Scenarios: load a file (TOML, or JSON of the same shape), validate it (hil/schema.py), and run it
against a rig with a programmer session, recording what the report plots.

After every step the device's state is read; each change must be a legal transition of the
reference model built from the firmware's table (power cuts and faults excepted: a reboot is not a
transition). Delivered volume is judged by the fixture's own STEP count across reboots.
"""

from __future__ import annotations

import json
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hil import accuracy, schema
from hil.link import Noise, Trace, open_client
from hil.programmed import Timeline
from hil.quantities import STROKE_NL
from hil.rig import PowerLost, Rig
from host_tools import render, state_model
from host_tools.errors import DeviceRefused, PumpError
from host_tools.pump_facts import fact
from host_tools.requests import DAY_ALIASES, DAYS
from host_tools.units import ml_text

DEFAULT_START = datetime(2026, 1, 5, 8, 0)  # a Monday, 08:00 local: every scenario starts somewhere fixed
LOCAL_EPOCH = datetime(2000, 1, 1)
SAMPLES_PER_ADVANCE = 144     # plot and accuracy resolution of one advance step ...
SAMPLE_MIN_MS = 10 * 60_000   # ... but no finer than 10 minutes of device time


class ScenarioFailed(AssertionError):
    pass


def load(path: Path | str) -> dict:
    """A validated scenario; FileNotFoundError for a missing file, SchemaError for a bad one."""
    path = Path(path)
    raw = path.read_bytes()  # FileNotFoundError: a usage error for the runner
    try:
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise schema.SchemaError(str(path), None, "(syntax)", str(e)) from None
    sc = schema.validate(data, str(path))
    sc.setdefault("name", path.stem)
    sc["file"] = str(path)
    return sc


@dataclass
class StepResult:
    i: int
    action: str
    text: str
    ok: bool | None = None   # None: not run
    message: str = ""
    hours: float = 0.0       # device time when it ended, hours from the start


@dataclass
class Outcome:
    name: str
    file: str
    proves: str = ""
    status: str = "passed"   # passed | failed | skipped | error
    message: str = ""
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    programmed: list[float] = field(default_factory=list)
    accuracy: list[tuple[float, float, float]] = field(default_factory=list)
    thresholds: dict = field(default_factory=dict)
    dates: dict = field(default_factory=dict)
    props: dict = field(default_factory=dict)
    trace: str = ""


def describe(step: dict) -> str:
    """One line for the report: the step as the scenario wrote it (clinical units)."""
    return ", ".join(f"{k} = {_written(v)}" for k, v in step["raw"].items())


def _written(v: Any) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_written(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_written(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False) if isinstance(v, (str, bool)) else str(v)


class Run:
    def __init__(self, sc: dict, rig: Rig):
        self.sc, self.rig = sc, rig
        self.out = Outcome(sc["name"], sc["file"], sc.get("proves", ""))
        self.trace, self.noise = Trace(), Noise()
        self.timeline = Timeline()
        self.start_local: datetime = sc["pump"].get("start", DEFAULT_START)
        self.offset = sc["pump"].get("utc_offset", 0)
        self.review: dict | None = None
        self.tones: list[tuple[int, int]] = []
        self.cut_armed = False
        self.ahead_nl = 0  # how far the pump's own count may run ahead of the fixture (power cuts)
        self.ptm: dict | None = None
        self.state: str | None = None
        self.v0 = 0
        self.client: Any = None

    # -- the whole run ---------------------------------------------------------------------------
    def execute(self) -> Outcome:
        t0 = time.monotonic()
        out = self.out
        out.steps = [StepResult(s["i"], s["action"], describe(s)) for s in self.sc["steps"]]
        lacks = self.rig.capabilities.lacks(self.sc["needs"])
        if lacks:
            out.status, out.message = "skipped", f"the {self.rig.name} back end lacks {', '.join(lacks)}"
            return out
        try:
            self._start()
            for step, result in zip(self.sc["steps"], out.steps):
                try:
                    self._step(step)
                    result.ok = True
                    result.hours = self._hours()
                except ScenarioFailed as e:
                    result.ok, result.message, result.hours = False, str(e), self._hours()
                    out.status, out.message = "failed", f"step {step['i']} ({step['action']}): {e}"
                    break
                except Exception as e:  # a broken rig or link is this scenario's error, not the runner's crash
                    result.ok, result.message = False, f"{type(e).__name__}: {e}"
                    out.status, out.message = "error", f"step {step['i']} ({step['action']}): {type(e).__name__}: {e}"
                    break
            self._finish()
        except Exception as e:  # power-on or the final readings
            if out.status == "passed":
                out.status, out.message = "error", f"{type(e).__name__}: {e}"
        finally:
            if self.client:
                self.client.close()
            out.seconds = time.monotonic() - t0
            out.trace = self.trace.text()
        return out

    def _start(self) -> None:
        reservoir = self.sc["pump"].get("reservoir")
        self.rig.power_on(fresh=True, reservoir_ml=int(reservoir.split()[0]) if reservoir else None)
        self.out.props = {"back_end": self.rig.describe().get("back_end", self.rig.name),
                          "board_serial": self.rig.describe().get("board_serial", "")}
        self._connect()
        self.client.clock(set_s=self._local_to_device(self.start_local), utc_offset_min=self.offset)
        self.out.props["firmware_version"] = self.client.status()["firmware_version"]
        entries = self.client.log(last=1)["entries"]
        self.log_from = entries[-1]["seq"] + 1 if entries else 0
        self.rig.tones()  # boot tones are not the scenario's
        self.v0 = self.rig.pins()["now_ms"]
        self._sample()
        self.timeline.add(self.now_s, "offset", {"utc_offset_min": self.offset})

    def _connect(self) -> None:
        if self.client:
            self.client.close()
        self.client = open_client(self.rig.port, self.trace, self.noise, timeout=self.rig.client_timeout)

    def _finish(self) -> None:
        out = self.out
        if not out.samples:
            return
        try:
            out.thresholds = {"low_reservoir_nl": self.client.limits().get("low_reservoir_nl"), "empty_nl": EMPTY_NL}
        except PumpError:
            pass
        out.dates = self._first_predictions()
        out.programmed = self.timeline.cumulative([s["clock"] for s in out.samples])
        delivered = [s["pumped_nl"] - s["primed_nl"] for s in out.samples]
        out.accuracy = accuracy.trumpet([s["clock"] for s in out.samples], delivered, out.programmed)

    def _first_predictions(self) -> dict:
        """The alarm and refill dates as first predicted (hours from the start): the report draws
        them, so one sees whether the alarm came when the pump said it would."""
        dates = {}
        for key in ("alarm_date", "refill_date"):
            s = next((s for s in self.out.samples if s.get(key)), None)
            if s:
                dates[key] = (s["vnow"] - self.v0) / 3_600_000 + (s[key] - s["clock"]) / 3600
        return dates

    # -- time --------------------------------------------------------------------------------------
    def _hours(self) -> float:
        return (self.out.samples[-1]["vnow"] - self.v0) / 3_600_000 if self.out.samples else 0.0

    def _local_to_device(self, local: datetime) -> int:
        return int((local - LOCAL_EPOCH).total_seconds()) - self.offset * 60

    def _moment_s(self, m: Any) -> int:
        if isinstance(m, tuple):
            day, minute = m
            local = datetime.combine(self.start_local.date(), datetime.min.time()) + timedelta(days=day - 1,
                                                                                               minutes=minute)
        else:
            local = m
        return self._local_to_device(local)

    def _advance(self, ms: int) -> None:
        target = self.rig.pins()["now_ms"] + ms
        chunk = max(SAMPLE_MIN_MS, ms // SAMPLES_PER_ADVANCE)
        while True:
            left = target - self.out.samples[-1]["vnow"]
            if left <= 0:
                return
            try:
                self.rig.advance(min(chunk, left))
            except PowerLost as e:
                if not self.cut_armed:
                    raise
                self.cut_armed = False  # the armed mid-write cut happened: power is back, go on
                self.trace.note(f"power failed mid-write: {e}")
                self._connect()
            self._sample()

    def _until(self, m: Any, what: str) -> None:
        target = self._moment_s(m)
        now = self.now_s
        if target < now:
            raise ScenarioFailed(f"{what} {m} is {now - target} s in the past")
        if target > now:
            self._advance((target - now) * 1000)

    # -- one step ----------------------------------------------------------------------------------
    def _step(self, step: dict) -> None:
        if "at" in step:
            self._until(step["at"], "at")
        action, arg = step["action"], step.get("arg")
        transition_ok = True
        if action == "advance":
            self._advance(arg)
        elif action == "until":
            self._until(arg, "until")
        elif action == "expect":
            self._expect(arg)
        elif action == "fault":
            self._fault(arg)
            transition_ok = False
        elif action == "clear":
            if arg == "link_noise":
                self.noise.pattern = None
            else:
                self.rig.clear(arg)
        elif action == "acknowledge":
            self.client.alarms(ack=True)
        elif action == "alarm_test":
            self.client.alarm_test()
        elif action == "patient_bolus":
            self._command(step, "patient_bolus", {})
        elif action == "clock":
            self._clock(arg)
            transition_ok = False
        else:
            self._command(step, *device_request(action, arg))
        self._sample(check_transition=transition_ok)

    def _clock(self, arg: dict) -> None:
        if "utc_offset" in arg:
            self.offset = arg["utc_offset"]
        set_s = self._moment_s(arg["set"]) if "set" in arg else None
        self.client.clock(set_s=set_s, utc_offset_min=arg.get("utc_offset"))
        self._sample(check_transition=False)
        self.timeline.add(self.now_s, "offset", {"utc_offset_min": self.offset})

    def _fault(self, f: dict) -> None:
        kind = f["kind"]
        self.trace.note(f"fault {f}")
        if kind == "link_noise":
            self.noise.pattern = f.get("pattern", "garbage")
            self.noise.size = f.get("bytes", 32)
            return
        if kind == "power_cut":
            # the pump records delivery one checkpoint ahead (spec §6): a cut may leave its count
            # that much above the strokes made, for good
            per_day = self.out.samples[-1]["rate_nl_per_day"]
            self.ahead_nl += -(-per_day * CHECKPOINT_MIN // (1440 * STROKE_NL)) * STROKE_NL + STROKE_NL
            self.cut_armed = bool(f.get("mid_write"))
        self.rig.inject(f)
        if kind == "power_cut" and not f.get("mid_write"):
            self._connect()  # the device rebooted: a new session

    def _command(self, step: dict, cmd: str, args: dict) -> None:
        c = self.client
        two_phase = cmd in schema.TWO_PHASE
        if "refused" in step:
            before = _therapy_view(c.status())
            try:
                if two_phase:
                    review = c.prepare(cmd, **args)
                    self.review = review
                    c.commit(review["token"])
                else:
                    c.request(cmd, **args)
            except DeviceRefused as e:
                named = {str(e.detail.get("limit")), e.name}
                if step["refused"] not in named and step["refused"] not in e.text:
                    raise ScenarioFailed(f"refused, but by {e.detail.get('limit') or e.name} ({e.text}), "
                                         f"expected {step['refused']}") from None
                after = _therapy_view(c.status())
                if after != before:
                    raise ScenarioFailed(f"the refused {cmd} changed the pump: {before} -> {after}") from None
                return
            raise ScenarioFailed(f"the device accepted the {cmd}; expected it refused by {step['refused']}")
        if step.get("commit") is False:
            self.review = c.prepare(cmd, **args)
            self.trace.note("session ends before the commit (incomplete programming)")
            self._connect()
            return
        result = c.run(cmd, **args) if two_phase else c.request(cmd, **args)
        if isinstance(result, dict) and "review" in result:
            self.review = result["review"]
        st = c.status()
        now = st["clock"]
        if cmd == "program":
            self.timeline.add(now, "program", args)
        elif cmd == "bolus":
            self.timeline.add(now, "bolus", args)
        elif cmd == "refill":
            self.timeline.add(now, "concentration", {"concentration": args["concentration"]})
        elif cmd == "ptm":
            self.ptm = args
        elif cmd == "patient_bolus" and self.ptm:
            self.timeline.add(now, "bolus", {"dose_mcg": self.ptm["dose_mcg"], "over_s": self.ptm["over_s"]})

    # -- what the device says ----------------------------------------------------------------------
    def _sample(self, check_transition: bool = False) -> dict:
        st = self.client.status()
        pins = self.rig.pins()
        self.tones += self.rig.tones()
        th = st.get("therapy", {})
        s = {"vnow": pins["now_ms"], "clock": st["clock"], "state": st["state"], "mode": st["mode"],
             "reservoir_nl": st["reservoir_nl"], "rate_nl_per_day": st["rate_nl_per_day"],
             "pumped_nl": pins["strokes"] * STROKE_NL, "delivered_nl": th.get("delivered_nl", 0),
             "primed_nl": th.get("primed_nl", 0), "alarms": [a["code"] for a in st["alarms"]],
             "alarm_date": st.get("alarm_date"), "refill_date": st.get("refill_date")}
        if (check_transition and self.state is not None and s["state"] != self.state
                and not state_model.is_legal(self.state, s["state"])):
            raise ScenarioFailed(f"the device went from {self.state} to {s['state']}, not a transition of the model")
        self.state = s["state"]
        self.now_s = st["clock"]
        self.out.samples.append(s)
        self.last_status, self.last_pins = st, pins
        return s

    def _expect(self, want: dict) -> None:
        self._sample()
        problems: list[str] = []
        for key, value in want.items():
            problem = EXPECT[key](self, value)
            if problem:
                problems.append(problem)
        if problems:
            raise ScenarioFailed("; ".join(problems))


EMPTY_NL: int = fact("EMPTY_NL")  # the empty-reservoir threshold (firmware alarms.py), drawn in the report
# delivery recorded ahead, one checkpoint at a time: 15 minutes (firmware store.py, spec §6 default)
CHECKPOINT_MIN = 1440 // fact("CKPT_DAY_FRACTION")


def _therapy_view(st: dict) -> dict:
    """What a refused request must not change."""
    return {k: st.get(k) for k in ("state", "mode", "daily_dose_mcg", "rate_nl_per_day", "concentration_mcg_per_ml",
                                   "reservoir_nl")}


def device_request(action: str, a: dict) -> tuple[str, dict]:
    """A validated step's table (device units already) -> (device command, its args)."""
    if action == "program":
        mode = a["mode"]
        req: dict[str, Any] = {"mode": mode}
        if mode == "continuous":
            req["dose_mcg"] = a["dose"]
        elif mode == "flex":
            req["days"] = flex_days(a)
        elif mode == "periodic":
            req.update(basal_mcg=a["basal"], bolus_mcg=a["bolus"], every_s=a["every"], over_s=a["over"],
                       start_min=a.get("start"))
        else:
            req["reason"] = a["reason"]
        if "override" in a:
            req["override"] = a["override"]
        return "program", req
    if action == "bolus":
        return "bolus", {"dose_mcg": a["dose"], "over_s": a["over"]}
    if action == "prime":
        return "prime", {"catheter_nl": a["catheter"]}
    if action == "refill":
        return "refill", {"removed_nl": a["removed"], "added_nl": a["added"], "concentration": a["concentration"]}
    if action == "limits":
        names = {"origin": "profile", "titration": "titration_pct", "low_reservoir": "low_reservoir_nl",
                 "bolus_cap": "bolus_cap_mcg", "initial_cap": "initial_cap_mcg", "hard_max": "hard_max_mcg"}
        return "limits", {names[k]: v for k, v in a.items()}
    if action == "ptm":
        names = {"enable": "enable", "dose": "dose_mcg", "over": "over_s", "max_per_day": "max_per_day",
                 "lockout": "lockout_s", "override": "override"}
        return "ptm", {names[k]: v for k, v in a.items()}
    raise ValueError(f"no device request for {action}")


def flex_days(a: dict) -> dict:
    if "steps" in a:
        return {"all": sorted(a["steps"])}
    by_day: dict[str, list] = {}
    for name, steps in a["days"].items():
        for d in DAY_ALIASES.get(name, (name,)):
            by_day[d] = sorted(steps)
    if set(by_day) == set(DAYS) and all(by_day[d] == by_day["mon"] for d in DAYS):
        return {"all": by_day["mon"]}
    return by_day


# -- expectations: each returns a problem (text) or None ------------------------------------------------

def _ml(nl: int | float) -> str:
    return f"{ml_text(int(nl))} mL"


def _volume(name: str, got: int, want: tuple[int, int]) -> str | None:
    value, tol = want
    if abs(got - value) <= tol:
        return None
    return f"{name} {_ml(got)}, expected {_ml(value)} ± {_ml(tol)}"


def _equal(name: str, got: Any, want: Any) -> str | None:
    return None if got == want else f"{name} {got!r}, expected {want!r}"


def _delivered(run: Run, want: tuple[int, int]) -> str | None:
    st, pins = run.last_status, run.last_pins
    primed = st["therapy"]["primed_nl"]
    plant = pins["strokes"] * STROKE_NL - primed
    problem = _volume("delivered (fixture strokes, all boots)", plant, (want[0], want[1] + _slack_nl(run)))
    if problem:
        return problem
    own = st["therapy"]["delivered_nl"]
    below, above = max(want[1], STROKE_NL), max(want[1], STROKE_NL) + run.ahead_nl
    if not -below <= own - plant <= above:
        return (f"the pump counts {_ml(own)} delivered, the fixture measured {_ml(plant)}: the pump's count "
                f"must be within -{_ml(below)} .. +{_ml(above)} of it (+ one checkpoint per power cut)")
    return None


def _alarms(run: Run, want: list[dict]) -> str | None:
    got = {a["code"]: a for a in run.last_status["alarms"]}
    if set(got) != {w["code"] for w in want}:
        return f"alarms {sorted(got) or 'none'}, expected {sorted(w['code'] for w in want) or 'none'}"
    for w in want:
        for key in ("priority", "acknowledged"):
            if key in w and got[w["code"]].get(key) != w[key]:
                return f"alarm {w['code']}: {key} {got[w['code']].get(key)!r}, expected {w[key]!r}"
    return None


def _tones(run: Run, want: str) -> str | None:
    heard = {hz for _, hz in run.tones if hz}
    run.tones = []
    kind = ("critical" if {1320, 880} & heard else "non_critical" if heard else "none")
    if want == "any":
        return None if heard else "no tone since the last tones check, expected one"
    return None if kind == want else f"tones {kind} ({sorted(heard)} Hz) since the last check, expected {want}"


def _entries(run: Run) -> list[dict]:
    """The log since the scenario began: event codes and their sentences, as `itbpump log --json`."""
    entries = render.log_json(run.client.log(last=1024))["entries"]
    return [e for e in entries if e["seq"] >= run.log_from]


def _log(run: Run, want: list[tuple[str, str]]) -> str | None:
    entries = _entries(run)
    i = 0
    for event, fragment in want:
        while i < len(entries) and not _matches(entries[i], event, fragment):
            i += 1
        if i == len(entries):
            seen = ", ".join(f"{e['event']}: {e['text']}" for e in entries[-12:])
            return f"log has no '{event}{': ' + fragment if fragment else ''}' (in order); last entries: {seen}"
        i += 1
    return None


def _matches(e: dict, event: str, fragment: str) -> bool:
    """An entry of this event whose sentence holds the fragment (or whose codes include it)."""
    return e["event"] == event and (fragment in e["text"] or fragment in e.get("codes", ()))


def _no_log(run: Run, want: list[tuple[str, str]]) -> str | None:
    found = [f"{e['event']}: {e['text']}" for e in _entries(run) if any(_matches(e, *w) for w in want)]
    shown = [f"{ev}{': ' + fr if fr else ''}" for ev, fr in want]
    return f"log has {found}, expected none of {shown}" if found else None


def _review(run: Run, want: dict) -> str | None:
    r = run.review
    if r is None:
        return "no review yet (program, bolus, prime, refill or ptm first)"
    if "daily_dose" in want and r["new"]["daily_dose_mcg"] != want["daily_dose"]:
        return f"review: new daily dose {r['new']['daily_dose_mcg']} mcg/day, expected {want['daily_dose']} mcg/day"
    if "change" in want and (r.get("change_tenths_pct") is None or round(r["change_tenths_pct"] / 10) != want["change"]):
        return f"review: change {r.get('change_tenths_pct')} tenths of a %, expected {want['change']} %"
    if "warning" in want and not any(want["warning"] in w for w in r["warnings"]):
        return f"review: no warning containing '{want['warning']}' in {r['warnings']}"
    if "override" in want and want["override"] not in [o["limit"] for o in r["overrides"]]:
        return f"review: no override of {want['override']} in {r['overrides']}"
    return None


def _date(name: str) -> Any:
    def check(run: Run, want: tuple[Any, int]) -> str | None:
        got = run.last_status.get(name)
        target = run._moment_s(want[0])
        if got is None or abs(got - target) * 1000 > want[1]:
            return f"{name} {got}, expected {target} (device s) ± {want[1] // 1000} s"
        return None
    return check


def _bridge(run: Run, want: dict) -> str | None:
    b = run.last_status["therapy"].get("bridge")
    if not b:
        return "no bridge running"
    if "dead_volume" in want and b["dead_volume_nl"] != want["dead_volume"]:
        return f"bridge dead volume {_ml(b['dead_volume_nl'])}, expected {_ml(want['dead_volume'])}"
    if "pushed" in want:
        return _volume("bridge pushed", b["pushed_nl"], want["pushed"])
    if "old_concentration" in want:
        return _equal("bridge old concentration", b["old_concentration"], want["old_concentration"])
    return None


def _bolus_delivered(run: Run, want: tuple[int, int]) -> str | None:
    b = run.last_status["therapy"].get("bolus")
    return _volume("bolus delivered", b["delivered_nl"] if b else 0, want)


def _vs_programmed(run: Run, tol: int) -> str | None:
    st, pins = run.last_status, run.last_pins
    plant = pins["strokes"] * STROKE_NL - st["therapy"]["primed_nl"]
    programmed = run.timeline.cumulative([s["clock"] for s in run.out.samples])[-1]
    if abs(plant - programmed) <= tol + _slack_nl(run):
        return None
    return (f"delivered {_ml(plant)} (fixture), programmed {_ml(round(programmed))}: "
            f"{_ml(round(plant - programmed))} apart, more than {_ml(tol)}")


def _slack_nl(run: Run) -> int:
    """One stroke more tolerance for what the fixture counted at an instant, on a rig without a
    lockstep clock (see _strokes)."""
    return 0 if run.rig.capabilities.lockstep_clock else STROKE_NL


def _strokes(run: Run, want: tuple[int, int]) -> str | None:
    """The fixture's count at an instant. Without a lockstep clock the requests before it took the
    pump's own time (the program started a little after the scenario's instant), so a stroke
    falling due within that time may or may not be in: one stroke more tolerance there."""
    n, (v, tol) = run.last_pins["strokes"], want
    slack = 0 if run.rig.capabilities.lockstep_clock else 1
    if abs(n - v) <= tol + slack:
        return None
    return f"fixture counted {n} strokes, expected {v} ± {tol}" + (f" (± {tol + slack} on a {run.rig.capabilities.clock} clock)" if slack else "")


EXPECT = {
    "delivered_vs_programmed": _vs_programmed,
    "state": lambda r, v: _equal("state", r.last_status["state"], v),
    "mode": lambda r, v: _equal("mode", r.last_status["mode"], v),
    "daily_dose": lambda r, v: _equal("daily dose (mcg/day)", r.last_status["daily_dose_mcg"], v),
    "rate": lambda r, v: None if r.last_status["rate_nl_per_day"] == v else
    f"rate {_ml(r.last_status['rate_nl_per_day'])}/day, expected {_ml(v)}/day",
    "concentration": lambda r, v: _equal("concentration (mcg/mL)", r.last_status["concentration_mcg_per_ml"], v),
    "reservoir": lambda r, v: _volume("reservoir", r.last_status["reservoir_nl"], v),
    "delivered": _delivered,
    "primed": lambda r, v: _volume("primed", r.last_status["therapy"]["primed_nl"], v),
    "strokes": _strokes,
    "alarms": _alarms,
    "tones": _tones,
    "log": _log,
    "no_log": _no_log,
    "review": _review,
    "alarm_date": _date("alarm_date"),
    "refill_date": _date("refill_date"),
    "clock": _date("clock"),
    "bridge": _bridge,
    "bolus_delivered": _bolus_delivered,
    "motor": lambda r, v: _equal("motor", "on" if r.last_pins["motor_on"] else "off", v),
    "ticks_ms": lambda r, v: _equal("ticks_ms", r.client.diag()["ticks_ms"], v),
}
assert set(EXPECT) == set(schema.EXPECTATIONS), "every expectation in the schema has its check"


def run(sc: dict, rig: Rig) -> Outcome:
    return Run(sc, rig).execute()
