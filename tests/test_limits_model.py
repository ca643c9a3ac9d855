"""Safety limits (spec §4) against an independent model: the firmware accepts exactly what the
model accepts, refuses with the limit the model names, and shows the model's numbers in review.

The model (LimitsModel) is written from the spec text, not from firmware/safety/limits.py or
limit_rules.py: it keeps the whole history of daily doses as exact Fractions of mcg/day. The
device runs in CPython on the in-memory HAL, whose RTC follows its tick counter, and time
passes as the main loop lets it (sleep to the next deadline, service), so the 24 h window moves
with the device's engine time.

Then: limits.record/window/full_until against an exact history (the window is exact at any
length; a full history refuses a dose change until its oldest leave), and fixed cases at the
edges the random runs rarely reach: the high-dose warning, a full history on the device, many
stops, periodic doses off the interval grid.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from fractions import Fraction

import device_harness
from core import errors
import pytest
from device_harness import ClockHal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from safety.limits import MAX_HIST, full_until, record, window

DAY_S = 86_400
HOUR_S = 3_600
CONC = 500  # mcg/mL: 2 nL per mcg; the pump's range 0.048..24 mL/day is 24..12000 mcg/day
NL_PER_MCG = 1_000_000 // CONC
MIN_RATE_NL, MAX_RATE_NL = 48_000, 24_000_000
FILL_NL = 20_000_000
REFILL_BELOW_NL = 8_000_000  # an accepted program is <= 2000 mcg/day = 4 mL/day: 30 h use < 6 mL
PROFILES = {"spinal": (10, 30), "cerebral": (5, 15), "pediatric": (5, 15)}  # spec §4.1, % per 24 h
INITIAL, CEILING, HARD_MAX = 200, 1000, 2000  # mcg/day, spec §4 defaults
DECREASE_PCT, HIGH_DOSE, HIGH_STEP_PCT = 20, 500, 20
# periodic intervals (s) that divide 86400 x 1440: boluses per day x 1440 is then a whole number,
# so the firmware's mcg/day x 1440 is exact (off it the firmware rounds up: test_periodic_dose_rounds_up_off_the_grid)
EVERY_S = (3600, 4800, 5400, 7200, 9600, 10800, 14400, 17280, 21600, 28800, 43200, 86400, 172800, 345600)
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
assert all(DAY_S * 1440 % every == 0 for every in EVERY_S)

pytestmark = pytest.mark.usefixtures("fast_calls")


# -- the independent model ------------------------------------------------------------------------

def flex_daily(week: list[list[tuple[int, int]]]) -> Fraction:
    """Largest day's time-weighted dose (mcg/day) of a weekly flex schedule, minute by minute:
    each minute runs the latest step started at or before it, the week (Monday first) wrapping."""
    starts = {d * 1440 + m: mcg for d, steps in enumerate(week) for m, mcg in steps}
    cur = starts[max(starts)]  # before the week's first step, last week's last step runs
    totals = [0] * 7
    for minute in range(7 * 1440):
        cur = starts.get(minute, cur)
        totals[minute // 1440] += cur
    return Fraction(max(totals), 1440)


class LimitsModel:
    """Spec §4 from its text. hist: every (start s, worst-case daily dose in mcg/day, or None
    when stopped), in order; a dose lasts until the next one starts.

    A dose is "in effect during the previous 24 h" when it was in effect for some time after
    now - 24 h: a dose that ended exactly 24 h ago, or lasted zero seconds (replaced within the
    same second), does not count. This is the firmware's documented reading (limits.py).
    - titration reference: the lowest such non-stopped dose; none -> the initial-dose cap
      (overridable); else the new dose may be at most reference x (100 + pct) / 100 (no override);
    - decrease reference: the highest such dose; a new dose below 80 % of it needs an override
      (exactly -20 % is allowed); a stop needs its reason, which acts as the override;
    - ceiling 1000 (overridable); hard maximum 2000 (never);
    - high-dose warning: an increase > 20 % over the titration reference when it is >= 500;
    - the pump keeps at most MAX_HIST doses of the last 24 h (a stop while stopped, or a change
      replaced within the same second, is not a new one): a dose change that needs one more is
      refused (history_full, no override) until enough of the oldest left; a stop always goes.
    """

    def __init__(self, pct: int):
        self.pct = pct
        self.hist: list[tuple[int, Fraction | None]] = []
        self.progs: list[tuple[int, tuple]] = []  # (start s, prescription) of every change

    def in_window(self, now: int) -> list[Fraction | None]:
        out = []
        for i, (start, dose) in enumerate(self.hist):
            end = self.hist[i + 1][0] if i + 1 < len(self.hist) else None  # None: still in effect
            if end is not None and (end <= now - DAY_S or end <= start):
                continue
            out.append(dose)
        return out

    def refs(self, now: int) -> tuple[Fraction | None, Fraction | None]:
        doses = [d for d in self.in_window(now) if d is not None]
        return (min(doses), max(doses)) if doses else (None, None)

    def kept(self, now: int) -> list[tuple[int, Fraction | None]]:
        """The distinct doses the pump holds now: the last one and those that ended after now - 24 h."""
        doses: list[tuple[int, Fraction | None]] = []
        for t, d in self.hist:
            if d is None and doses and doses[-1][1] is None:
                continue  # still stopped
            if doses and doses[-1][0] == t:
                doses.pop()  # replaced within the same second
            doses.append((t, d))
        return [e for i, e in enumerate(doses) if i + 1 == len(doses) or doses[i + 1][0] > now - DAY_S]

    def full_until(self, now: int) -> int:
        """0 when a dose change fits now; else when it will."""
        kept = self.kept(now)
        if len(kept) + (0 if kept and kept[-1][0] == now else 1) <= MAX_HIST:
            return 0
        return kept[len(kept) + 1 - MAX_HIST][0] + DAY_S  # from the next second on: one more

    def violated(self, now: int, new: Fraction | None, prog: tuple | None = None) -> dict[str, tuple[bool, Fraction]]:
        """{limit: (an override passes it, the largest dose it allows)}; new None: a stop; prog: the
        new prescription, for the rolling 24 h windows."""
        lo, hi = self.refs(now)
        out: dict[str, tuple[bool, Fraction]] = {}
        if new is not None and self.full_until(now):
            return {"history_full": (False, Fraction(0))}
        if new is None:
            if hi is not None:
                out["decrease"] = (True, Fraction(0))
            return out
        if new > HARD_MAX:
            out["hard_max"] = (False, Fraction(HARD_MAX))
        if lo is None:
            if new > INITIAL:
                out["initial_cap"] = (True, Fraction(INITIAL))
        else:
            top = lo * (100 + self.pct) / 100
            if new > top:
                out["titration"] = (False, top)
            elif prog is not None and self.window_violated(now, prog):
                out["titration_window"] = (False, top)
        if new > CEILING:
            out["ceiling"] = (True, Fraction(CEILING))
        worst = None if prog is None else self.max_window(now, prog)
        if worst is not None and worst > new:  # the program's own worst 24 h, as its daily dose
            limits = {"hard_max": (False, Fraction(HARD_MAX)), "ceiling": (True, Fraction(CEILING))}
            if lo is None:
                limits["initial_cap"] = (True, Fraction(INITIAL))
            else:
                limits["titration"] = (False, lo * (100 + self.pct) / 100)
            for k, (over, most) in limits.items():
                if k not in out and worst > most:
                    out[k] = (over, most)
            if "titration" in out:
                out.pop("titration_window", None)
        if hi is not None and new < hi * (100 - DECREASE_PCT) / 100:
            out["decrease"] = (True, hi * (100 - DECREASE_PCT) / 100)
        return out

    # -- the titration guard over rolling 24 h windows (issue 16) ------------------------------------
    # A prescription (its schedule): ("s",) stopped; ("c", mcg/day, ptm); ("f", week, ptm); ("p", basal,
    # bolus mcg, every s, over s, first bolus s, ptm); ptm: patient boluses at their maximum, mcg/day.
    def rate(self, prog: tuple, t: Fraction) -> Fraction:
        """mcg/day the prescription delivers at time t."""
        kind = prog[0]
        if kind == "s":
            return Fraction(0)
        if kind == "c":
            return Fraction(prog[1] + prog[2])
        if kind == "p":
            basal, mcg, every, over, first, ptm = prog[1:]
            r = Fraction(basal + ptm)
            if t >= first and (t - first) % every < over:
                r += Fraction(mcg * DAY_S, over)
            return r
        week, ptm = prog[1], prog[2]
        minute = int(t // 60)
        day, m = divmod(minute, 1440)
        wd = (day + 5) % 7  # 2000-01-01 was a Saturday
        today = [d for start, d in week[wd] if start <= m]
        return Fraction((today[-1] if today else week[(wd + 6) % 7][-1][1]) + ptm)

    @staticmethod
    def changes(prog: tuple, a: int, b: int) -> set[int]:
        """Whole seconds in [a, b] where the prescription's rate may change."""
        out = {a, b}
        if prog[0] == "p":
            every, over, first = prog[3], prog[4], prog[5]
            k = max(0, (a - over - first) // every)
            while first + k * every <= b:
                out |= {first + k * every, first + k * every + over}
                k += 1
        elif prog[0] == "f":
            for day in range(a // DAY_S - 1, b // DAY_S + 2):
                for start, _ in prog[1][(day + 5) % 7]:
                    out.add(day * DAY_S + start * 60)
        return {t for t in out if a <= t <= b}

    def amount(self, progs: list[tuple[int, tuple]], a: int, b: int) -> Fraction:
        """mcg the prescriptions (each from its start until the next one starts) deliver in [a, b)."""
        total = Fraction(0)
        for i, (start, prog) in enumerate(progs):
            end = progs[i + 1][0] if i + 1 < len(progs) else None
            lo, hi = max(a, start), b if end is None else min(b, end)
            if hi <= lo:
                continue
            cuts = sorted(self.changes(prog, lo, hi))
            for x, y in zip(cuts, cuts[1:]):
                total += self.rate(prog, Fraction(x + y, 2)) * (y - x) / DAY_S
        return total

    def max_window(self, now: int, prog: tuple) -> Fraction | None:
        """The most the prescription alone gives in any 24 h wholly after now (periodic, flex)."""
        if prog[0] == "p":
            span = (prog[5] - now) % prog[3] + prog[3] + DAY_S
        elif prog[0] == "f":
            span = 7 * DAY_S
        else:
            return None
        new = [(now, prog)]
        starts = self.changes(prog, now, now + span) | {t - DAY_S for t in self.changes(prog, now + DAY_S, now + span + DAY_S)}
        return max(self.amount(new, s, s + DAY_S) for s in starts if s >= now)

    def window_violated(self, now: int, prog: tuple) -> bool:
        """Would the change to prog push a rolling 24 h window over the titration allowance? Windows
        start at whole seconds in (now - 24 h, now]; one counts only where prog gives it more than
        the running prescription would."""
        lo, _ = self.refs(now)
        if lo is None:
            return False
        allow = lo * (100 + self.pct) / 100
        past = self.progs
        run = past[-1][1] if past else ("s",)
        new = [(now, prog)]
        cur = [(now, run)]
        starts = {now - DAY_S + 1, now}
        for i, (start, p) in enumerate(past):
            end = past[i + 1][0] if i + 1 < len(past) else now
            if end > now - DAY_S:
                starts |= {t for t in self.changes(p, max(start, now - DAY_S + 1), min(end, now))}
        starts |= {t - DAY_S for t in self.changes(prog, now + 1, now + DAY_S)}
        for s in starts:
            mine = self.amount(new, now, s + DAY_S)
            before = self.amount(past, s, now)
            if before + mine > allow and mine > self.amount(cur, now, s + DAY_S):
                return True
        return False

    def high_dose(self, now: int, new: Fraction) -> bool:
        lo, _ = self.refs(now)
        return lo is not None and lo >= HIGH_DOSE and new > lo * (100 + HIGH_STEP_PCT) / 100

    def record(self, now: int, dose: Fraction | None) -> None:
        self.hist.append((now, dose))


def round_mcg(x: Fraction | None) -> int | None:
    return None if x is None else math.floor(x + Fraction(1, 2))


def tenths_pct(new: Fraction, ref: Fraction) -> int:
    """Change in tenths of a percent, toward zero."""
    return int((new - ref) * 1000 / ref)


# -- the device --------------------------------------------------------------------------------

class StrokeHal(ClockHal):
    """ClockHal that keeps the time (ms) of every stroke: what the patient received, and when."""

    def __init__(self, flash_dir: str, **kwargs):
        super().__init__(flash_dir, **kwargs)
        self.stroke_ms: list[int] = []

    def stroke(self):
        super().stroke()
        self.stroke_ms.append(self.ms)


class Pump(device_harness.Pump):
    """A booted device whose RTC follows its ticks, with a clinician session that never adds an
    override by itself."""

    hal_type = StrokeHal

    def __init__(self, flash_dir: str):
        super().__init__(flash_dir)
        good, out = self.s.auth("clinician")
        assert good, out

    def ask(self, cmd: str, **args) -> tuple[bool, dict]:
        return self.s.ask(cmd, **args)

    def ok(self, cmd: str, **args) -> dict:
        good, out = self.s.ask(cmd, **args)
        assert good, out
        return out

    def snapshot(self) -> tuple:
        dev, th = self.dev, self.dev.therapy
        return (dev.fsm.state, th.mode, th.daily_x1440, th.d.rate, dev.safety.ptm, dev.storage.log_seq, list(dev.safety.hist))

    def fill(self) -> None:
        self.ok("refill", removed_nl=self.dev.therapy.reservoir_nl, added_nl=FILL_NL, concentration=CONC)


# -- the state machine ---------------------------------------------------------------------------

def physical_ok(*mcg_per_day: int) -> bool:
    return all(MIN_RATE_NL <= m * NL_PER_MCG <= MAX_RATE_NL for m in mcg_per_day)


def bolus_rate_nl(mcg: int, over_s: int) -> int:
    return mcg * NL_PER_MCG * DAY_S // over_s


class LimitsMachine(RuleBasedStateMachine):
    profile = "spinal"

    def __init__(self):
        super().__init__()
        self.cwd = os.getcwd()
        self.flash = tempfile.mkdtemp(prefix="itb-limits-")
        self.pump = Pump(self.flash)
        self.dev = self.pump.dev
        self.now = self.dev.therapy.now_s()
        self.model: LimitsModel | None = None
        self.mode = "stopped"
        self.x = Fraction(0)  # the prescription's daily dose (mcg/day), without the patient bolus
        self.ptm: tuple[int, int] | None = None  # (dose, max per day)
        self.applied: list[tuple[int, Fraction | None, bool]] = []  # (ms, allowance, overridden)

    def teardown(self):
        try:
            if self.model is not None:
                self.delivered_within_the_allowance()
        finally:
            os.chdir(self.cwd)
            shutil.rmtree(self.flash, ignore_errors=True)

    def delivered_within_the_allowance(self):
        """Issue 16: what the patient received in every rolling 24 h window (the strokes the motor
        made) never exceeds the titration allowance of that window (the largest allowance of the
        prescriptions in effect during it), unless one of them was applied with an override."""
        strokes = self.pump.hal.stroke_ms
        progs = self.applied  # (ms it began, allowance mcg/day or None when stopped, overridden)
        day = DAY_S * 1000
        j = 0
        for i, t in enumerate(strokes):
            while j < len(strokes) and strokes[j] < t + day:
                j += 1
            touching = [(a, o) for k, (start, a, o) in enumerate(progs)
                        if start < t + day and (k + 1 == len(progs) or progs[k + 1][0] > t)]
            if any(o for _, o in touching):
                continue
            allow = max((a for a, _ in touching if a is not None), default=None)
            got = Fraction((j - i) * 250, NL_PER_MCG)
            assert allow is not None and got <= allow + Fraction(250, NL_PER_MCG), (
                "a 24 h window got more than its titration allowance", t, got, allow, touching)

    @initialize(data=st.data())
    def setup(self, data):
        lo, hi = PROFILES[self.profile]
        # the range's ends make whole-number limits of round doses (x 11/10, 13/10, 21/20, 23/20)
        pct = data.draw(st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi)), label="titration_pct")
        good, out = self.pump.s.request("limits", profile=self.profile, titration_pct=pct)
        assert good and out["profile"] == self.profile and out["titration_pct"] == pct, out
        assert out["titration_range"] == [lo, hi] and out["initial_cap_mcg"] == INITIAL, out
        assert out["ceiling_mcg"] == CEILING and out["hard_max_mcg"] == HARD_MAX, out
        self.model = LimitsModel(pct)
        self.pump.fill()

    # -- helpers ---------------------------------------------------------------------------------
    def ptm_daily(self, ptm=None) -> int:
        p = self.ptm if ptm is None else ptm
        return p[0] * p[1] if p else 0

    def target(self, data) -> int:
        """A worst-case daily dose (mcg/day) near what the limits decide on, now."""
        assert self.model is not None
        lo, hi = self.model.refs(self.now)
        anchors = [Fraction(INITIAL), Fraction(CEILING), Fraction(HARD_MAX), Fraction(HIGH_DOSE), Fraction(24)]
        if lo is not None:
            anchors += [lo, lo * (100 + self.model.pct) / 100, lo * (100 + HIGH_STEP_PCT) / 100]
        if hi is not None:
            anchors += [hi, hi * (100 - DECREASE_PCT) / 100]
        how = data.draw(st.sampled_from(["edge", "edge", "exact", "factor", "round", "any"]), label="how")
        if how == "any":
            return data.draw(st.integers(1, 2500), label="dose")
        if how == "round":  # round doses make exact +pct % and -20 % limits whole numbers
            return data.draw(st.sampled_from([20, 50, 100]), label="unit") * data.draw(st.integers(1, 25), label="n")
        whole = [a for a in anchors if a.denominator == 1]
        if how == "exact" and whole:  # exactly on a limit: allowed (> and < bind, not >= and <=)
            return min(int(data.draw(st.sampled_from(whole), label="anchor")), 2500)
        a = data.draw(st.sampled_from(anchors), label="anchor")
        if how == "edge":
            d = math.floor(a) + data.draw(st.integers(-1, 1), label="delta")
        else:
            d = round(a * data.draw(st.integers(50, 150), label="factor_pct") / 100)
        return min(max(d, 1), 2500)

    def override(self, data) -> dict:
        return {"override": "clinical decision"} if data.draw(st.booleans(), label="override") else {}

    def request(self, cmd: str, args: dict, new: Fraction | None, physical: bool, stopping=False,
                prog: tuple | None = None) -> bool:
        """Send the request; check the answer against the model. new: the worst-case daily dose
        the limits judge (None: no limit check); stopping: a stop (with its reason); prog: the new
        prescription's schedule (the rolling 24 h windows)."""
        assert self.model is not None
        before = self.pump.snapshot()
        checked = new is not None or stopping
        bad = self.model.violated(self.now, None if stopping else new, prog) if checked and physical else {}
        lo, hi = self.model.refs(self.now)
        passes = stopping or "override" in args
        blocking = {k: v for k, v in bad.items() if not (v[0] and passes)}
        good, out = self.pump.ask(cmd, **args)
        if not physical:
            assert not good and out["code"] == errors.BAD_ARGUMENT, out
            assert self.pump.snapshot() == before, "a refused request changed the pump"
            return False
        if blocking:
            assert not good, ("the firmware accepted what the model refuses", blocking, out)
            assert out["code"] == errors.LIMIT and out["error"] == "limit", out
            assert out["limit"] in blocking, (out, blocking)
            hard = {k: v[1] for k, v in blocking.items() if not v[0]}
            if hard:  # the most restrictive limit no override passes binds
                assert out["limit"] in hard and hard[out["limit"]] == min(hard.values()), (out, blocking)
            assert out["override"] is all(v[0] for v in blocking.values()), (out, blocking)
            assert self.pump.snapshot() == before, "a refused request changed the pump"
            return False
        assert good, ("the firmware refused what the model accepts", bad, out)
        rv = out["review"]
        assert rv["reference"] == {"min_mcg": round_mcg(lo), "max_mcg": round_mcg(hi)}, (rv, lo, hi)
        shown = Fraction(0) if stopping or new is None else new
        if lo is None:
            assert rv["change_tenths_pct"] is None, rv
        else:
            assert rv["change_tenths_pct"] == tenths_pct(shown, lo), (rv, shown, lo)
        high = any(w.startswith("high dose") for w in rv["warnings"])
        assert high == (checked and not stopping and self.model.high_dose(self.now, new)), (rv, lo, new)
        assert sorted(o["limit"] for o in rv["overrides"]) == sorted(bad), (rv, bad)
        assert [o["limit"] for o in out["overrides"]] == [o["limit"] for o in rv["overrides"]], out
        if checked:
            self.model.record(self.now, None if stopping else new)
            self.model.progs.append((self.now, ("s",) if stopping else prog))
            allow = INITIAL if lo is None else lo * (100 + self.model.pct) / 100
            self.applied.append((self.pump.hal.ms, None if stopping else allow, bool(rv["overrides"])))
        return True

    def running(self, ptm: tuple[int, int] | None) -> tuple:
        """The running prescription with these patient-bolus settings."""
        assert self.model is not None
        prog = self.model.progs[-1][1] if self.model.progs else ("s",)
        return prog if prog[0] == "s" else prog[:-1] + (self.ptm_daily(ptm or (0, 0)),)

    # -- rules ---------------------------------------------------------------------------------
    def _advance(self, seconds: int) -> None:
        if self.dev.therapy.reservoir_nl < REFILL_BELOW_NL:
            self.pump.fill()  # the physical limits stay out of the way
        self.pump.advance(seconds)
        self.now += seconds

    @rule(seconds=st.one_of(st.integers(1, 30 * HOUR_S), st.integers(1, 120),
                            st.sampled_from([DAY_S - 1, DAY_S, DAY_S + 1, 12 * HOUR_S])))
    def advance(self, seconds):
        self._advance(seconds)

    @rule(data=st.data())
    def advance_to_a_window_edge(self, data):
        """To exactly 24 h (+-1 s) after a dose began or ended: where it leaves the window."""
        assert self.model is not None
        edges = sorted({t + DAY_S + d for t, _ in self.model.hist for d in (-1, 0, 1)} - {self.now})
        edges = [t for t in edges if t > self.now]
        if not edges:
            self._advance(1)
            return
        self._advance(data.draw(st.sampled_from(edges), label="edge") - self.now)

    @rule(data=st.data())
    def continuous(self, data):
        worst = self.target(data)
        mcg = max(1, worst - self.ptm_daily())
        args = {"mode": "continuous", "dose_mcg": mcg, **self.override(data)}
        prog = ("c", mcg, self.ptm_daily())
        if self.request("program", args, Fraction(mcg + self.ptm_daily()), physical_ok(mcg), prog=prog):
            self.mode, self.x = "continuous", Fraction(mcg)

    @rule(data=st.data())
    def flex(self, data):
        worst = self.target(data) - self.ptm_daily()

        def day(label):
            n = data.draw(st.integers(1, 4), label=label + " steps")
            starts = sorted(data.draw(st.sets(st.integers(0, 1439), min_size=n, max_size=n), label=label + " starts"))
            if data.draw(st.booleans(), label=label + " flat"):
                return [(s, max(1, worst)) for s in starts]
            return [(s, max(1, round(worst * data.draw(st.integers(70, 130), label="pct") / 100))) for s in starts]

        if data.draw(st.booleans(), label="same every day"):
            steps = day("all")
            week, days = [steps] * 7, {"all": [list(s) for s in steps]}
        else:
            week = [day(d) for d in WEEK]
            days = {d: [list(s) for s in steps] for d, steps in zip(WEEK, week)}
        x = flex_daily(week)
        phys = physical_ok(*(mcg for steps in week for _, mcg in steps))
        args = {"mode": "flex", "days": days, **self.override(data)}
        prog = ("f", week, self.ptm_daily())
        if self.request("program", args, x + self.ptm_daily(), phys, prog=prog):
            self.mode, self.x = "flex", x
            assert self.dev.therapy.daily_x1440 == x * 1440

    @rule(data=st.data())
    def periodic(self, data):
        worst = self.target(data) - self.ptm_daily()
        every = data.draw(st.sampled_from(EVERY_S), label="every_s")
        # mostly boluses of at most half the dose (a basal below 24 mcg/day is refused: physical)
        most = max(1, min(100, worst * every // (2 * DAY_S)))
        wide = data.draw(st.integers(0, 4), label="wide") == 0
        bolus = data.draw(st.integers(1, 100 if wide else most), label="bolus_mcg")
        per_day = Fraction(bolus * DAY_S, every)
        basal = max(1, math.floor(worst - per_day))
        # the bolus at <= 6 mL/day: with the basal, the pump's 24 mL/day is never reached
        over = data.draw(st.integers(math.ceil(bolus * NL_PER_MCG * DAY_S / 6_000_000), min(every - 1, DAY_S)),
                         label="over_s")
        args = {"mode": "periodic", "basal_mcg": basal, "bolus_mcg": bolus, "every_s": every, "over_s": over}
        first = self.now
        if data.draw(st.booleans(), label="start_min"):
            args["start_min"] = data.draw(st.integers(0, 1439), label="start")
            first += (args["start_min"] * 60 - self.now % DAY_S) % DAY_S  # the next such local time (UTC+0)
        args.update(self.override(data))
        x = basal + per_day
        phys = physical_ok(basal) and basal * NL_PER_MCG + bolus_rate_nl(bolus, over) <= MAX_RATE_NL
        prog = ("p", basal, bolus, every, over, first, self.ptm_daily())
        if self.request("program", args, x + self.ptm_daily(), phys, prog=prog):
            self.mode, self.x = "periodic", x
            assert self.dev.therapy.daily_x1440 == x * 1440

    @rule(data=st.data())
    def stop(self, data):
        if data.draw(st.integers(0, 9), label="no reason") == 0:  # refused: a stop needs its reason
            before = self.pump.snapshot()
            good, out = self.pump.ask("program", mode="stop")
            assert not good and out["code"] == errors.BAD_ARGUMENT and "reason" in out["text"], out
            assert self.pump.snapshot() == before
            return
        if self.request("program", {"mode": "stop", "reason": "trial ended"}, None, True, stopping=True, prog=("s",)):
            self.mode, self.x = "stopped", Fraction(0)
            assert self.dev.therapy.mode == "stopped" and self.dev.therapy.d.rate == 0

    @rule(data=st.data())
    def patient_bolus_settings(self, data):
        """Enabled patient boluses add dose x max per day; disabling takes it away (a decrease)."""
        if data.draw(st.booleans(), label="enable"):
            mcg = data.draw(st.integers(1, 20), label="ptm dose")
            n = data.draw(st.integers(1, 24), label="max_per_day")
            over = data.draw(st.integers(max(60, mcg * 29), 3600), label="ptm over_s")
            lockout = data.draw(st.integers(max(900, over), DAY_S), label="lockout_s")
            args = {"enable": True, "dose_mcg": mcg, "over_s": over, "max_per_day": n, "lockout_s": lockout}
            new_ptm: tuple[int, int] | None = (mcg, n)
        else:
            args, new_ptm = {"enable": False}, None
        args.update(self.override(data))
        new = None if self.mode == "stopped" else self.x + self.ptm_daily(new_ptm or (0, 0))
        # a patient bolus here is <= 6 mL/day (over_s >= 29 s per mcg), the therapy's fastest
        # moment < 12 mL/day: never the pump's 24 mL/day
        if self.request("ptm", args, new, True, prog=None if new is None else self.running(new_ptm)):
            self.ptm = new_ptm
            assert (self.dev.safety.ptm is None) == (new_ptm is None)

    @invariant()
    def engine_time_is_the_model_time(self):
        assert self.dev.therapy.now_s() == self.now
        assert self.dev.therapy.mode == self.mode and self.dev.therapy.daily_x1440 == self.x * 1440


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_firmware_accepts_exactly_what_the_model_accepts(profile):
    machine = type("LimitsMachine_" + profile, (LimitsMachine,), {"profile": profile})
    # 30 steps rarely fill the firmware's 32 history entries: a full history is tested below
    run_state_machine_as_test(machine, settings=settings(
        max_examples=30, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


# -- limits.record / limits.window / limits.full_until ---------------------------------------------

def exact_window(entries: list[tuple[int, int]], now: int) -> tuple[int, int]:
    """(lowest, highest) dose (-1: none) in effect for some time in (now - 24 h, now]."""
    lo = hi = -1
    for i, (start, dose) in enumerate(entries):
        end = entries[i + 1][0] if i + 1 < len(entries) else now + 1
        if end <= now - DAY_S or end <= start or dose < 0:
            continue
        lo = dose if lo < 0 else min(lo, dose)
        hi = max(hi, dose)
    return lo, hi


# gaps between records (s): 0 replaces the previous entry; the short ones put more than 32
# entries within 24 h (a full history); the long ones drop what left the window
short_gap_st = st.one_of(st.just(0), st.integers(1, 900), st.integers(1, 3 * HOUR_S))
gap_st = st.one_of(short_gap_st, st.integers(1, DAY_S + 1), st.sampled_from([DAY_S - 1, DAY_S]))
dose_st = st.one_of(st.just(-1), st.integers(1, 3000 * 1440))
queries_st = st.lists(st.integers(0, 2 * DAY_S), min_size=1, max_size=5)


def _replay(steps, queries):
    """Record steps (gap s, dose) into a firmware history as limit_rules lets them through (a
    dose change only when full_until says it fits; a stop always); check full_until against the
    model's rule at every step; the windows at each query (s after the last step) from the
    firmware and from the exact history of what was recorded."""
    hist: list[int] = []
    model = LimitsModel(30)
    exact: list[tuple[int, int]] = []
    now = 0
    for gap, dose in steps:
        now += gap
        until = full_until(hist, now)
        assert until == model.full_until(now), (hist, now)
        if dose >= 0 and until:
            assert until > now
            before = list(hist)
            assert full_until(hist, until - 1) and not full_until(hist, until)
            assert hist == before  # full_until only reads
            continue
        record(hist, now, dose)
        model.record(now, None if dose < 0 else Fraction(dose))
        exact.append((now, dose))
        assert len(hist) <= (MAX_HIST + 1) * 3 and len(hist) % 3 == 0
    return [(window(hist, now + q), exact_window(exact, now + q)) for q in queries]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(gap_st, dose_st), min_size=1, max_size=3 * MAX_HIST), queries_st)
def test_window_is_exact_at_any_length(steps, queries):
    for fw, exact in _replay(steps, queries):
        assert fw == exact


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(short_gap_st, st.one_of(st.just(-1), st.integers(1, 3000 * 1440))),
                min_size=MAX_HIST + 1, max_size=3 * MAX_HIST), queries_st)
def test_a_full_history_stays_exact(steps, queries):
    """Many changes within 24 h: the history fills, changes wait, the window stays exact."""
    for fw, exact in _replay(steps, queries):
        assert fw == exact


def _full_history() -> list[int]:
    """32 doses, one a second from t = 0: 100, 110, 100, ... mcg/day."""
    hist: list[int] = []
    for t in range(MAX_HIST):
        record(hist, t, (100 + 10 * (t % 2)) * 1440)
    assert len(hist) == MAX_HIST * 3
    return hist


def test_full_until_names_when_the_oldest_leaves():
    hist = _full_history()
    assert full_until(hist, MAX_HIST - 1) == 0  # the same second: a change replaces the last
    assert full_until(hist, 100) == 1 + DAY_S  # the dose begun at 0 ends at 1, leaves at 1 + 24 h
    assert full_until(hist, DAY_S) == 1 + DAY_S
    assert full_until(hist, 1 + DAY_S) == 0
    assert len(hist) == MAX_HIST * 3  # only read


def test_a_stop_goes_in_a_full_history_and_a_stop_while_stopped_adds_nothing():
    hist = _full_history()
    record(hist, 100, -1)
    assert len(hist) == (MAX_HIST + 1) * 3 and hist[-3:] == [100, -1, -1]
    record(hist, 200, -1)
    assert len(hist) == (MAX_HIST + 1) * 3  # still stopped since 100
    assert full_until(hist, 100) == 2 + DAY_S  # two must leave, even for the same second
    assert window(hist, 200) == (100 * 1440, 110 * 1440)


def test_many_stops_leave_no_stale_reference():
    """A 500 mcg/day dose, then 32 stops: 27.5 h later nothing is in the window."""
    steps = [(0, 500 * 1440), (1000, -1), (49_000, -1)] + [(1, -1)] * 30
    ((lo, hi), (xlo, xhi)), = _replay(steps, [100_000 - 50_030])
    assert (lo, hi) == (xlo, xhi) == (-1, -1)


def test_entries_at_the_same_second_replace():
    hist: list[int] = []
    record(hist, 0, 100 * 1440)
    record(hist, 50, 2000 * 1440)
    record(hist, 50, 90 * 1440)  # the 2000 lasted no time: it never was in effect
    assert hist == [0, 100 * 1440, 100 * 1440, 50, 90 * 1440, 90 * 1440]
    assert window(hist, 60) == (90 * 1440, 100 * 1440)
    record(hist, 50, -1)
    assert hist == [0, 100 * 1440, 100 * 1440, 50, -1, -1]
    assert window(hist, 50) == (100 * 1440, 100 * 1440)


def test_window_edges():
    hist: list[int] = []
    record(hist, 0, 100 * 1440)
    record(hist, 1000, 200 * 1440)
    assert window(hist, 1000 + DAY_S - 1) == (100 * 1440, 200 * 1440)  # ended 1 s less than 24 h ago
    assert window(hist, 1000 + DAY_S) == (200 * 1440, 200 * 1440)  # ended exactly 24 h ago: out
    assert window([], 5) == (-1, -1)
    record(hist, 1000 + 2 * DAY_S, 150 * 1440)  # drops what left the window
    assert hist == [1000, 200 * 1440, 200 * 1440, 1000 + 2 * DAY_S, 150 * 1440, 150 * 1440]
    assert window(hist, 1000 + 2 * DAY_S) == (150 * 1440, 200 * 1440)  # began at the edge: still in


# -- fixed cases at the edges the random runs rarely reach ---------------------------------------

@pytest.fixture
def pump(flash):
    p = Pump(flash)
    p.fill()
    return p


def _warned(body: dict) -> bool:
    return any(w.startswith("high dose") for w in body["review"]["warnings"])


@pytest.mark.parametrize("first, second", [(500, 601), (500, 600), (499, 599), (650, 781), (650, 780)])
def test_high_dose_warning_edges(pump, first, second):
    """Spinal 30 %: an increase of more than 20 % over a reference of at least 500 warns."""
    model = LimitsModel(30)
    now = pump.dev.therapy.now_s()
    pump.ok("program", mode="continuous", dose_mcg=first, override="first dose above the initial cap")
    model.record(now, Fraction(first))
    pump.advance(HOUR_S)
    body = pump.ok("program", mode="continuous", dose_mcg=second, override="above the ceiling")
    assert _warned(body) == model.high_dose(now + HOUR_S, Fraction(second))
    assert _warned(body) == (first >= HIGH_DOSE and second * 100 > first * 120)  # the spec's words


# -- a full history, many stops, periodic doses off the grid, on the device ------------------------

def test_a_full_history_refuses_a_dose_change_until_the_oldest_leaves(pump):
    """32 changes in 5 h 10 min: the 33rd waits (no override passes), names the time; a stop goes."""
    t0 = pump.dev.therapy.now_s()
    for n in range(MAX_HIST):
        if n:
            pump.advance(600)
        pump.ok("program", mode="continuous", dose_mcg=100 + 10 * (n % 2))
    assert len(pump.dev.safety.hist) == MAX_HIST * 3
    pump.advance(600)
    before = pump.snapshot()
    good, out = pump.ask("program", mode="continuous", dose_mcg=100, override="clinical decision")
    assert not good and out["code"] == errors.LIMIT and out["limit"] == "history_full", out
    assert out["override"] is False and "32 daily doses" in out["text"], out
    wait = t0 + 600 + DAY_S - pump.dev.therapy.now_s()  # the first dose ended at t0 + 600
    assert out["retry_in_s"] == wait, out
    assert pump.snapshot() == before
    pump.advance(wait - 1)
    good, out = pump.ask("program", mode="continuous", dose_mcg=100)
    assert not good and out["limit"] == "history_full" and out["retry_in_s"] == 1, out
    pump.advance(1)
    pump.ok("program", mode="continuous", dose_mcg=100)
    assert len(pump.dev.safety.hist) == MAX_HIST * 3


def test_a_stop_is_never_refused_for_a_full_history(pump):
    for n in range(MAX_HIST):
        pump.advance(60)
        pump.ok("program", mode="continuous", dose_mcg=100 + 10 * (n % 2))
    pump.advance(60)
    pump.ok("program", mode="stop", reason="catheter occlusion suspected")
    assert pump.dev.therapy.mode == "stopped" and len(pump.dev.safety.hist) == (MAX_HIST + 1) * 3
    good, out = pump.ask("program", mode="continuous", dose_mcg=100)
    assert not good and out["limit"] == "history_full", out


def test_restart_after_a_day_stopped_needs_the_initial_cap_override_after_many_stops(pump):
    """Stops while stopped add nothing: after 27.5 h stopped the 500 mcg/day dose is no longer a
    reference, and a restart above the initial-dose cap needs an override (spec §4)."""
    model = LimitsModel(30)
    t0 = pump.dev.therapy.now_s()
    pump.ok("program", mode="continuous", dose_mcg=500, override="known patient")
    model.record(t0, Fraction(500))
    for at in [1000, 50_000] + list(range(50_001, 50_031)):  # 32 stops
        pump.advance(t0 + at - pump.dev.therapy.now_s())
        pump.ok("program", mode="stop", reason="pump pocket revision")
        model.record(t0 + at, None)
    assert len(pump.dev.safety.hist) == 2 * 3
    pump.advance(t0 + 100_000 - pump.dev.therapy.now_s())  # stopped for 27.5 h
    assert model.violated(t0 + 100_000, Fraction(450)) == {"initial_cap": (True, Fraction(INITIAL))}
    good, out = pump.ask("program", mode="continuous", dose_mcg=450)
    assert not good and out["limit"] == "initial_cap", out


def test_periodic_dose_rounds_up_off_the_grid(pump):
    """Spec §4 counts boluses at their maximum: off the grid of intervals dividing 86400 x 1440
    the firmware's mcg/day x 1440 rounds up, never down."""
    pump.s.request("limits", titration_pct=30)
    pump.ok("program", mode="continuous", dose_mcg=100)
    pump.advance(HOUR_S)
    # 129 + 1 x 86400 / 86399 = 130.0000116 mcg/day: over 100 + 30 %
    good, out = pump.ask("program", mode="periodic", basal_mcg=129, bolus_mcg=1, every_s=86_399, over_s=600)
    assert not good and out["limit"] == "titration", out
    # 1 x 86400 / 86399 x 1440 = 1440.0167: 1441 / 1440 mcg/day a day
    pump.ok("program", mode="periodic", basal_mcg=128, bolus_mcg=1, every_s=86_399, over_s=600)
    assert pump.dev.therapy.daily_x1440 == 128 * 1440 + 1441
