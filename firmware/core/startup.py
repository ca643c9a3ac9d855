"""Boot: self-test, identity, restore the last valid state, leave 'boot' for it.

Loaded once at boot by Device.boot() and dropped after: none of it stays in the heap.

After a reset the therapy resumes from the newest valid copy (reset recovered).
One bad copy: recovered from the other, non-critical memory alarm. No valid
copy where copies existed: critical memory alarm, stopped with safe defaults
(the alarm catalogue's rule). A bolus or priming in progress is not resumed.
"""

from storage import identity
from core import link
from storage import state
from safety import limits
from therapy.units import STROKE_NL
from hal import RESET_POWER, RESET_WATCHDOG


def run(dev):
    ok = link.crc16(b"123456789", 9) == 0x29B1
    try:
        ids, first = identity.load_or_provision(dev.hal)
        dev.ident = ids.get("serial")  # what the device says of itself (the rest is ident.json's)
    except OSError:
        ok = False
        first = False
    if not ok:
        dev.fsm.fire("self_test_failed")
        dev.alarms.raise_alarm("memory_critical")
        return
    dev.safety.lim = limits.defaults()
    rec, seq, bad = state.load(dev.hal)
    dev.storage.store_seq = max(seq, 0)
    # the log's place from the saved state onwards, before anything below logs (a full scan else)
    dev.call("storage.event_log", "resume", rec.get("logseq") if rec else None)
    if rec is None:
        dev.fsm.fire("self_test_ok")
        if bad:
            dev.alarms.raise_alarm("memory_critical")  # stopped, safe defaults
            dev.log("memory_lost", (bad,))
    else:
        _restore(dev, rec)
        if bad:
            dev.alarms.raise_alarm("memory_noncritical")
            dev.log("memory_fixed")
    if not first and dev.hal.reset_cause() in (RESET_POWER, RESET_WATCHDOG):
        # an implanted pump never shuts down on purpose: any later boot is a reset
        dev.alarms.raise_alarm("reset_recovered")
        dev.log("reset", (dev.hal.reset_cause(),), dev.fsm.state)
    dev.call("storage.event_log", "last_seq")  # find the log's place now, not inside a later request
    try:
        dev.call("alarms.rules", "arm")
    except ImportError:
        pass  # no alarm rules in this build
    state.save(dev)


def _restore(dev, r):
    th = dev.therapy
    if dev.hal.rtc_seconds() < r["t"]:
        # the RTC lost time with the power (a Pico's has no battery): the last save is the
        # best knowledge; the clinician should set the clock
        dev.hal.rtc_set(r["t"])
        th.set_clock(r["t"])
        dev.log("clock_lost", (r["t"],))
    th.conc = r["conc"]
    th.strokes = r["strokes"]
    fill = r.get("fill")
    if fill:  # one ledger: the reservoir is what was filled less the strokes since (both recorded ahead)
        th.filled_nl, th.fill_strokes = fill
        th.reservoir_nl = max(0, th.filled_nl - (th.strokes - th.fill_strokes) * STROKE_NL)
    else:  # a state saved before the ledger
        th.reservoir_nl = r["res"]
        th.filled_nl = th.reservoir_nl
        th.fill_strokes = th.strokes
    th.catheter_nl = r["cath"]
    th.bridge_conc = r["bconc"]
    th.bridge_left = r["bleft"]
    th.offset_min = r["off"]
    th.prime_strokes = r["pstrokes"]
    dev.alarms.eri_s = r["eri"]
    dev.safety.low_reservoir_nl = r["low"]
    dev.alarms.active = r["alarms"]
    dev.safety.lim = r.get("lim") or dev.safety.lim
    dev.safety.hist = r.get("hist", [])
    dev.safety.past = r.get("past") or _past_from_hist(dev.safety.hist, r)
    dev.safety.ptm = r.get("ptm")
    dev.safety.ptm_used = r.get("ptmu", [])
    dev.session.auth_fails, dev.session.auth_lock = r.get("auth", (0, 0))
    _prescription(th, r)
    th.daily_x1440 = r["daily"]
    th.minimum = r["min"]
    th.set_halted(r["halt"])
    was = r["fsm"]
    if was == "priming":  # interrupted: the catheter may not be full, resume what was paused
        was = "stopped" if r["mode"] == "stopped" else "running"
        dev.log("prime_lost")
    dev.fsm.fire(_RESUME[was])


_RESUME = {"stopped": "self_test_ok", "running": "resume", "minimum_rate": "resume_minimum",
           "alarm_critical": "resume_halted"}


def _prescription(th, r):
    mode = r["mode"]
    if mode == "continuous":
        th.program_continuous(r["dose"])
    elif mode == "flex":
        th.program_flex(tuple(tuple((s[0], s[1]) for s in day) for day in r["flex"]))
    elif mode == "periodic":
        p_dose, every, over, next_s = r["periodic"]
        now = th.now_s()
        if next_s < 0:
            first = 0
        elif next_s >= now:
            first = (next_s - now) * 10
        else:  # boluses missed while the power was off are skipped, not caught up
            first = every - ((now - next_s) * 10) % every
        th.program_periodic(r["dose"], p_dose, every, over, first)


def _past_from_hist(hist, r):
    """A state saved before the schedule record: each daily dose of the history as a steady rate
    (rounded up), the running prescription's schedule from its start."""
    steps = []
    for i in range(0, len(hist), 3):
        steps += [hist[i], max(0, -(-hist[i + 2] // 1440))]
    frm = hist[-3] if hist else r["t"]
    if steps:
        del steps[-2:]  # the running one is expanded from frm
    first = None
    if r["periodic"] and r["periodic"][3] >= 0:
        every = r["periodic"][1] // 10
        first = r["periodic"][3] - every * ((r["periodic"][3] - frm) // every)
    return [frm, steps, [], first]
