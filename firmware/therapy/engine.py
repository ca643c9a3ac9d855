"""The therapy engine: which rate to deliver now, and when that changes.

Pure logic, no HAL: the device lets engine time pass in deciseconds and
commands a stroke whenever step() says so. Engine time is `t` deciseconds
after `base_s` (device seconds); it is re-based every day so `t` stays small.

Rates are whole nL/day. The basal rate comes from the mode (continuous, flex
step, periodic background); clinician and periodic boluses add theirs on top
for their duration. Priming, minimum rate and halt replace all of it.
"""

from micropython import const

from therapy import units
from therapy.stroke_timing import Delivery
from therapy.units import DS_PER_DAY, MAX_RATE_NL, MIN_RATE_NL, STROKE_NL, TUBING_NL

STOPPED = "stopped"
CONTINUOUS = "continuous"
FLEX = "flex"
PERIODIC = "periodic"

# bits in Therapy.events, for the device to act on (state machine, log)
EV_PRIMED = const(1)
EV_BRIDGE_DONE = const(2)
EV_BOLUS_DONE = const(4)

_EPOCH_WEEKDAY = const(5)  # 2000-01-01 was a Saturday; Monday is day 0


class Therapy:
    def __init__(self, now_s):
        self.base_s = now_s
        self.t = 0
        self.d = Delivery()
        self.offset_min = 0
        # drug and dead volumes
        self.conc = 0  # mcg/mL in the reservoir; 0 = never filled
        self.reservoir_nl = 0
        self.catheter_nl = 0
        self.bridge_conc = 0  # concentration still in tubing + catheter
        self.bridge_left = 0  # nL of it still to push
        # prescription
        self.mode = STOPPED
        self.daily_x1440 = 0  # the prescription's daily dose, mcg/day * 1440 (set when programmed)
        self.dose = 0  # continuous dose, or periodic background, mcg/day
        self.flex = None  # 7 tuples of (start_min, dose_mcg), Monday first
        self.p_dose = 0  # periodic bolus, mcg
        self.p_every = 0  # ds
        self.p_over = 0  # ds
        self.p_next = -1  # engine time of the next periodic bolus, -1: none
        self.p_end = -1  # engine time the running periodic bolus ends, -1: none
        self.p_rate = 0
        self.p_left = 0
        # clinician bolus on top of the therapy
        self.b_end = -1
        self.b_rate = 0
        self.b_left = 0
        self.b_dose = 0
        self.b_volume = 0
        self.b_start = 0
        # priming, fallbacks
        self.priming = 0  # priming strokes still to go
        self.prime_volume = 0
        self.prime_strokes = 0  # lifetime strokes that filled dead volume, not the patient
        self.strokes = 0  # lifetime strokes the rotor confirmed (d.strokes: those commanded)
        self.filled_nl = 0  # volume put in at the last refill
        self.fill_strokes = 0  # self.strokes at the last refill: delivered + reservoir = filled
        self.saved_acc = 0
        self.minimum = False
        self.halted = False
        self.next_b = -1  # engine time of the next rate change
        self.events = 0
        self._recompute()

    # -- time ----------------------------------------------------------------------
    def now_s(self):
        return self.base_s + self.t // 10

    def next_event(self):
        """Deciseconds until the next stroke or rate change; -1 when none is scheduled."""
        s = self.d.until_stroke()
        b = self.next_b
        if b < 0:
            return s
        b -= self.t
        if s < 0 or b < s:
            return b
        return s

    def step(self):
        """Move to the next event and process it; True when a stroke must be commanded now.

        The stroke counts (stroked()) only once the rotor confirms it: a stalled stroke moved
        no drug, so it neither empties the reservoir nor counts as delivered or primed.
        """
        dt = self.next_event()
        if dt < 0:
            return False
        self.t += dt
        stroke = self.d.run(dt)
        if self.t == self.next_b:
            self._recompute()
        return stroke

    def idle(self, ds):
        """Let ds pass when no event falls inside it (ds < next_event())."""
        if ds > 0:
            self.t += ds
            self.d.run(ds)

    def stroked(self):
        """A stroke the rotor confirmed: the one delivery ledger (strokes, reservoir, priming, bridge)."""
        self.strokes += 1
        if self.reservoir_nl >= STROKE_NL:
            self.reservoir_nl -= STROKE_NL
        else:
            self.reservoir_nl = 0
        if self.priming:
            self.prime_strokes += 1
            self.priming -= 1
            if not self.priming:
                self.d.acc = self.saved_acc  # therapy resumes where it paused
                self.events |= EV_PRIMED
                self._recompute()
        elif self.bridge_left:
            if self.bridge_left > STROKE_NL:
                self.bridge_left -= STROKE_NL
            else:
                self.bridge_left = 0
                self.events |= EV_BRIDGE_DONE
                self._recompute()

    # -- rates ---------------------------------------------------------------------
    def conc_now(self):
        """Concentration leaving the catheter: the old drug until the bridge is pushed through."""
        return self.bridge_conc if self.bridge_left else self.conc

    def _rebase(self):
        """A day off engine time and every time kept in it. Each "next event" is at or after t
        here (the engine never steps past one), so none turns negative, which would read as none."""
        self.base_s += 86400
        self.t -= DS_PER_DAY
        if self.b_end >= 0:
            self.b_end -= DS_PER_DAY
        if self.mode == PERIODIC:
            self.p_next -= DS_PER_DAY
        if self.p_end >= 0:
            self.p_end -= DS_PER_DAY

    def _recompute(self):
        """Settle what is active at engine time t; set the rate and the next boundary."""
        if self.t >= DS_PER_DAY:
            self._rebase()
            self.b_start -= DS_PER_DAY
        t = self.t
        if 0 <= self.b_end <= t:
            self.d.acc += self.b_left  # the bolus's last fraction of a nL: its volume is exact
            self.b_end = -1
            self.events |= EV_BOLUS_DONE
        if 0 <= self.p_end <= t:
            self.d.acc += self.p_left
            self.p_end = -1
        nb = DS_PER_DAY  # the daily re-base
        if self.mode == PERIODIC:
            if self.p_next <= t:
                if not (self.halted or self.priming or self.minimum):
                    self.p_rate, self.p_left = units.bolus_rate(self.p_dose * units.nl_per_mcg(self.conc_now()),
                                                               self.p_over)
                    self.p_end = self.p_next + self.p_over
                while self.p_next <= t:  # on the grid; boluses missed while held are skipped, not caught up
                    self.p_next += self.p_every
            # held or not, the engine wakes at the next bolus time: the schedule never falls behind t
            nb = min(nb, self.p_next)
        if self.halted:
            rate = 0
        elif self.priming:
            rate = MAX_RATE_NL
        elif self.minimum:
            rate = MIN_RATE_NL
        else:
            rate = 0
            npm = units.nl_per_mcg(self.conc_now()) if self.conc else 0
            if self.mode == CONTINUOUS:
                rate = self.dose * npm
            elif self.mode == FLEX:
                mcg, until = self.flex_now()
                rate = mcg * npm
                nb = min(nb, t + until)
            elif self.mode == PERIODIC:
                rate = self.dose * npm
                if self.p_end >= 0:
                    rate += self.p_rate
                    nb = min(nb, self.p_end)
            if self.b_end >= 0:
                rate += self.b_rate
                nb = min(nb, self.b_end)
        self.d.rate = rate
        self.next_b = nb

    def flex_now(self):
        """(dose of the flex step in effect, ds until the next step starts), from local time."""
        local = self.now_s() + self.offset_min * 60
        day = (local // 86400 + _EPOCH_WEEKDAY) % 7
        sec = local % 86400
        steps = self.flex[day]
        mcg = self.flex[(day + 6) % 7][-1][1]  # before today's first step, yesterday's last goes on
        until = -1
        for i in range(len(steps)):
            start = steps[i][0] * 60
            if start <= sec:
                mcg = steps[i][1]
            else:
                until = start - sec
                break
        if until < 0:
            until = 86400 - sec + self.flex[(day + 1) % 7][0][0] * 60
        return mcg, until * 10 - self.t % 10

    # -- prescription ------------------------------------------------------------------
    def _end_periodic(self):
        self.p_next = -1
        self.p_end = -1

    def program_continuous(self, mcg_per_day):
        self._end_periodic()
        self.mode = CONTINUOUS
        self.dose = mcg_per_day
        self._recompute()

    def program_flex(self, days):
        self._end_periodic()
        self.mode = FLEX
        self.flex = days
        self._recompute()

    def program_periodic(self, basal, bolus_mcg, every_ds, over_ds, first_in_ds):
        self._end_periodic()
        self.mode = PERIODIC
        self.dose = basal
        self.p_dose = bolus_mcg
        self.p_every = every_ds
        self.p_over = over_ds
        self.p_next = self.t + first_in_ds
        self._recompute()

    def stop(self):
        self._end_periodic()
        self.b_end = -1
        self.minimum = False  # a stopped pump delivers nothing, not even the minimum rate
        if self.priming:
            self.priming = 0
            self.d.acc = self.saved_acc
        self.mode = STOPPED
        self.dose = 0
        self.daily_x1440 = 0
        self._recompute()

    def start_bolus(self, mcg, over_ds):
        self.b_dose = mcg
        self.b_volume = mcg * units.nl_per_mcg(self.conc_now())
        self.b_rate, self.b_left = units.bolus_rate(self.b_volume, over_ds)
        self.b_end = self.t + over_ds
        self.b_start = self.t
        self._recompute()

    def _cancel_boluses(self):
        self.b_end = -1
        self.p_end = -1

    def prime(self, catheter_nl):
        """Fill catheter + pump tubing at the maximum rate; the therapy pauses meanwhile."""
        self.catheter_nl = catheter_nl
        self.prime_volume = catheter_nl + TUBING_NL
        self.priming = (self.prime_volume + STROKE_NL - 1) // STROKE_NL
        if self.bridge_left:
            # a new catheter: priming pushes the tubing's old drug to the catheter tip, so
            # at most the tubing volume of it still reaches the patient first
            self.bridge_left = min(self.bridge_left, TUBING_NL)
        self.saved_acc = self.d.acc
        self.d.acc = 0
        self._cancel_boluses()
        self._recompute()

    def refill(self, added_nl, conc):
        """The reservoir was emptied and refilled; another concentration starts a bridge."""
        if self.conc and conc != self.conc:
            self.bridge_conc = self.conc_now()
            self.bridge_left = TUBING_NL + self.catheter_nl
        self.conc = conc
        self.reservoir_nl = added_nl
        self.filled_nl = added_nl
        self.fill_strokes = self.strokes
        self._recompute()

    def set_clock(self, now_s):
        """The wall clock was set: engine time goes on, local time of day moves."""
        self.base_s += now_s - self.now_s()
        self._recompute()

    def set_offset(self, minutes):
        self.offset_min = minutes
        self._recompute()

    def set_minimum(self, on):
        if on:
            self._cancel_boluses()
        self.minimum = on
        self._recompute()

    def set_halted(self, on):
        if on:
            self._cancel_boluses()
        self.halted = on
        self._recompute()
