"""Alarm rules (spec §5): when each alarm is raised and cleared, and what it does to delivery.

Loaded only when the device crosses a watch point it keeps (core/device.py): a stroke without a
rotor pulse, the reservoir at or below dev.alarms.reservoir_floor after a stroke, or at a 10-minute
tick the battery at or below dev.alarms.battery_floor or device time past dev.alarms.wake_s. Every entry
point ends by setting those watch points again (_watch), so nothing resident decides.

Effects: empty reservoir and battery fault -> minimum rate (fsm fallback); motor stall and
EOS -> delivery halted (fsm halt). A motor stall is retried at every tick: the therapy is
un-halted so its next stroke is the attempt; a rotor pulse clears the stall, a missing one
halts again. Thresholds marked "sim default" stand for the pump model's values.
"""

from micropython import const
from alarms.catalogue import EMPTY_NL

ERI_MV = const(2700)  # sim default (3000 mV nominal): elective replacement indicator
EOS_MV = const(2500)  # sim default: end of service by voltage (else 90 days after ERI)
FAULT_MV = const(2200)  # sim default: a sag below this is a battery fault, not depletion
EOS_AFTER_S = const(7776000)  # 90 days from ERI to EOS
TICK_S = const(600)  # device.TICK_MS
RECHECK_S = const(3600)  # while ERI/EOS stand, look for a restored battery hourly
ANY = const(0x3FFFFFFF)  # a floor every reading is under: look every time
_dirty = False  # an alarm, halt or minimum rate changed in this call: save the state (storage/state.py)


# -- entry points (core/device.py, startup, requests) ------------------------------
def arm(dev):
    """Set the watch points from the current state (end of boot), and sound unacknowledged alarms."""
    _watch(dev)
    for code in dev.alarms.active:
        if not dev.alarms.active[code][1]:
            _sound(dev)
            return


def stroke_missed(dev):
    """A stroke without its rotor pulse: a motor stall (or a failed restart attempt)."""
    # the rotor did not turn: the stroke was never counted (Therapy.stroked), no drug left the reservoir
    if _raise(dev, "motor_stall", dev.therapy.strokes + 1):
        dev.alarms.stall_tries = 0
    else:
        n = getattr(dev.alarms, "stall_tries", 0) + 1
        dev.alarms.stall_tries = n
        if n & (n - 1) == 0:  # 1, 2, 4, 8...: the log shows the attempts without filling up
            dev.log("stall_retry", (n,))
    dev.alarms.stall_try = False
    _apply(dev)
    _watch(dev)
    _save(dev)


def reservoir(dev, save=True):
    """After a stroke at the reservoir floor (or a refill, which saves after: save=False): level
    alarms; a restart attempt's verdict."""
    if getattr(dev.alarms, "stall_try", False) and dev.therapy.strokes != dev.alarms.stall_at:
        dev.alarms.stall_try = False  # the attempt's stroke had its rotor pulse: strokes resumed
        _clear(dev, "motor_stall", getattr(dev.alarms, "stall_tries", 0))
    _levels(dev)
    _apply(dev)
    _watch(dev)
    if save:
        _save(dev)


def tick(dev):
    """The 10-minute tick, when the battery or wake_s says so: battery, stall restart, effects."""
    _catch_up(dev)
    _battery(dev)
    a = dev.alarms.active
    if "motor_stall" in a and "battery_eos" not in a and not getattr(dev.alarms, "stall_try", False):
        dev.alarms.stall_try = True  # un-halted below: the next scheduled stroke is the attempt
        dev.alarms.stall_at = dev.therapy.strokes
    _apply(dev)
    _watch(dev)
    _save(dev)


def _catch_up(dev):
    """Engine time to now (as Device.sync), so a rate change starts now, not at the last event.
    service() has run every due event: nothing falls inside the gap."""
    hal = dev.hal
    ds = hal.ticks_diff(hal.ticks_ms(), dev.t_tick) // 100
    if ds > 0:
        dev.therapy.idle(ds)
        dev.t_tick = hal.ticks_add(dev.t_tick, ds * 100)


# -- conditions ----------------------------------------------------------------
def _levels(dev):
    th = dev.therapy
    if not th.conc:
        return  # never filled: no reservoir alarms
    nl = th.reservoir_nl
    _set(dev, "low_reservoir", nl <= dev.safety.low_reservoir_nl, nl)
    _set(dev, "empty_reservoir", nl <= EMPTY_NL, nl)


def _battery(dev):
    mv = dev.hal.battery_mv()
    why = mv
    _set(dev, "battery_fault", mv < FAULT_MV, why)
    if mv < FAULT_MV:
        return  # a sag says nothing about depletion: ERI/EOS stay as they are
    if mv > ERI_MV:
        _clear(dev, "battery_eri", why)
        _clear(dev, "battery_eos", why)
        dev.alarms.eri_s = None
        return
    now = dev.therapy.now_s()
    if dev.alarms.eri_s is None:
        dev.alarms.eri_s = now
    _raise(dev, "battery_eri", why)
    if mv <= EOS_MV or now >= dev.alarms.eri_s + EOS_AFTER_S:
        _raise(dev, "battery_eos", why)


# -- raising, clearing, effects -------------------------------------------------
def _set(dev, code, on, why):
    if on:
        _raise(dev, code, why)
    else:
        _clear(dev, code, why)


def _raise(dev, code, why):
    global _dirty
    if not dev.alarms.raise_alarm(code):
        return False
    _dirty = True
    dev.log("alarm_raised", (why,), code)  # why: the stroke, reservoir nL or battery mV
    _sound(dev)
    return True


def _clear(dev, code, why):
    global _dirty
    if code in dev.alarms.active:
        _dirty = True
        dev.alarms.clear(code)
        dev.log("alarm_clear", (why,), code)  # why: failed restarts, reservoir nL or battery mV


def _sound(dev):
    """The buzzer (alarms/tones.py) picks the pattern of the alarms unacknowledged now."""
    dev.alarms.tone_step = 0
    dev.alarms.tone_at = dev.hal.ticks_ms()


def _apply(dev):
    """Delivery and state from the active alarms: halt beats minimum rate."""
    th = dev.therapy
    a = dev.alarms.active
    trying = "motor_stall" in a and getattr(dev.alarms, "stall_try", False)
    halt = "battery_eos" in a or ("motor_stall" in a and not trying)
    low = ("empty_reservoir" in a or "battery_fault" in a) and th.mode != "stopped"
    global _dirty
    if th.halted != halt:
        _dirty = True
        th.set_halted(halt)
    if th.minimum != low:
        _dirty = True
        th.set_minimum(low)
    _state(dev, halt or trying, low)
    dev.motor_idle()


def _state(dev, critical, low):
    fsm = dev.fsm
    s = fsm.state
    if critical:
        if s != "alarm_critical" and fsm.can("halt"):
            fsm.fire("halt")
    elif s == "alarm_critical":
        if "memory_critical" not in dev.alarms.active:  # a failed self-test stays where it is
            mode = dev.therapy.mode
            fsm.fire("halt_cleared_" + ("minimum" if low else "stopped" if mode == "stopped" else "running"))
    elif low:
        if fsm.can("fallback"):
            fsm.fire("fallback")
    elif s == "minimum_rate":
        fsm.fire("fallback_cleared")


def _save(dev):
    """A raised or cleared alarm, a halt or a fallback must survive a power cut."""
    global _dirty
    if _dirty:
        _dirty = False
        dev.alarms.dates[2] = True  # the alarm and refill dates again (therapy/dates.py): a halt, minimum rate, ...
        try:
            dev.call("storage.state", "save")
        except ImportError:
            pass  # a build without persistence


# -- watch points ------------------------------------------------------------------
def _watch(dev):
    a = dev.alarms.active
    th = dev.therapy
    if getattr(dev.alarms, "stall_try", False):
        dev.alarms.reservoir_floor = ANY  # a restart attempt: its stroke's verdict comes to reservoir()
    elif not th.conc or "empty_reservoir" in a:
        dev.alarms.reservoir_floor = -1
    elif "low_reservoir" in a:
        dev.alarms.reservoir_floor = EMPTY_NL
    else:
        dev.alarms.reservoir_floor = dev.safety.low_reservoir_nl
    if "battery_fault" in a:
        dev.alarms.battery_floor = ANY
    elif "battery_eos" in a:
        dev.alarms.battery_floor = FAULT_MV - 1
    elif "battery_eri" in a:
        dev.alarms.battery_floor = EOS_MV
    else:
        dev.alarms.battery_floor = ERI_MV
    dev.alarms.wake_s = _wake(dev, a)


def _wake(dev, a):
    now = dev.therapy.now_s()
    if "motor_stall" in a or "empty_reservoir" in a or "battery_fault" in a:
        return now  # every tick: restart attempts; effects checked again (e.g. after a stop)
    w = -1
    if "battery_eri" in a or "battery_eos" in a:
        w = now + RECHECK_S
    if dev.alarms.eri_s is not None and "battery_eos" not in a:
        # a tick early: service() compares with engine time, up to a stroke behind; tick() looks at now
        eos = dev.alarms.eri_s + EOS_AFTER_S - TICK_S
        if w < 0 or eos < w:
            w = eos
    if w > now and not dev.therapy.d.rate:
        return now  # no strokes move engine time (service compares it): look at every tick
    return w
