"""Requests that read the pump: hello, status, diag. Loaded per request (device._on_demand)."""

import gc
from therapy.units import TUBING_NL, STROKE_NL
from core.version import FIRMWARE_VERSION, PROTOCOL_VERSION
from alarms.listing import alarm_list

_EPOCH_WEEKDAY = 5  # 2000-01-01 was a Saturday; Monday is day 0


def hello(dev, args):
    dev.new_session()
    return {
        "protocol": PROTOCOL_VERSION,
        "firmware_version": FIRMWARE_VERSION,
        "serial": dev.identity(),
        "board": dev.hal.board,
        "medical_device": False,
    }


def diag(dev, args):
    """Heap and tick counter, for firmware engineers and bench/ (MicroPython only). heap_watch
    true/false starts/stops measuring the live heap after every module call (mem_peak; it costs
    a collection per call)."""
    if "heap_watch" in args:
        dev.heap_watch = bool(args["heap_watch"])
        dev.heap_peak = 0
    gc.collect()
    return {"mem_free": gc.mem_free(), "mem_alloc": gc.mem_alloc(), "ticks_ms": dev.hal.ticks_ms(),
            "mem_peak": dev.heap_peak, "log_failures": dev.log_failures, "flash_writes": dev.hal.flash_writes}


def status(dev, args):
    th = dev.therapy
    out = dev.summary()
    out["reservoir_nl"] = th.reservoir_nl
    out["reservoir_capacity_nl"] = dev.hal.capacity_ml * 1000000
    out["alarms"] = alarm_list(dev.alarms, dev)
    # when the level alarm fires, or fired: its time once raised, never "now"
    # predicted from the schedule when something changed (therapy/dates.py): kept, not walked here
    a = dev.alarms.active
    d = dev.dates
    out["alarm_date"] = a["low_reservoir"][0] if "low_reservoir" in a else d[0]
    out["refill_date"] = a["empty_reservoir"][0] if "empty_reservoir" in a else d[1]
    out["clock"] = th.now_s()
    out["utc_offset_min"] = th.offset_min
    out["firmware_version"] = FIRMWARE_VERSION
    out["serial"] = dev.identity()
    out["therapy"] = _detail(th)
    return out


def flex_step_index(th):
    """(weekday, index of the step in effect in that day's list) for status."""
    local = th.now_s() + th.offset_min * 60
    day = (local // 86400 + _EPOCH_WEEKDAY) % 7
    sec = local % 86400
    steps = th.flex[day]
    found = (day + 6) % 7, len(th.flex[(day + 6) % 7]) - 1
    for i in range(len(steps)):
        if steps[i][0] * 60 <= sec:
            found = day, i
    return found


def _detail(th):
    t = th.t
    # the ledger: strokes the rotor confirmed; since the last refill they + the reservoir = the fill
    detail = {"strokes": th.strokes, "delivered_nl": (th.strokes - th.prime_strokes) * STROKE_NL,
              "primed_nl": th.prime_strokes * STROKE_NL, "filled_nl": th.filled_nl,
              "since_refill_nl": (th.strokes - th.fill_strokes) * STROKE_NL}
    if th.mode == "flex":
        day, i = flex_step_index(th)
        start, mcg = th.flex[day][i]
        _, until = th.flex_now()
        detail["flex_step"] = {"start_min": start, "dose_mcg": mcg,
                               "next_start_s": th.now_s() + (until + t % 10) // 10}
    if th.mode == "periodic" and th.p_next >= 0:
        detail["next_bolus_s"] = th.base_s + th.p_next // 10
    if th.b_end >= 0:
        # the bolus's own share of the strokes: its programmed volume so far
        done = th.b_volume * (t - th.b_start) // (th.b_end - th.b_start)
        detail["bolus"] = {"dose_mcg": th.b_dose, "volume_nl": th.b_volume, "delivered_nl": done,
                           "ends_s": th.base_s + th.b_end // 10}
    if th.bridge_left:
        dead = TUBING_NL + th.catheter_nl
        detail["bridge"] = {"dead_volume_nl": dead, "pushed_nl": dead - th.bridge_left,
                            "old_concentration": th.bridge_conc}
    if th.priming:
        total = (th.prime_volume + STROKE_NL - 1) // STROKE_NL
        detail["priming"] = {"volume_nl": th.prime_volume, "pushed_nl": (total - th.priming) * STROKE_NL}
    return detail
