"""Requests that read the pump: hello, status, diag. Loaded per request (device._on_demand)."""

import gc
import json
from core import link
from therapy.units import TUBING_NL, STROKE_NL
from core.version import FIRMWARE_VERSION, PROTOCOL_VERSION
from alarms.listing import alarm_json

separators = (",", ":")  # json.dumps's: compact, as device.separators
_EPOCH_WEEKDAY = 5  # 2000-01-01 was a Saturday; Monday is day 0
# status's answer as a JSON template (link.fill: 0x01 the next integer, 0x02 the next JSON text):
# the keys are written once here, not encoded again per request by json.dumps, which with the
# dicts it needs was ~2.7 ms of a status's CPU on a Pico (docs/rp2040.md). Compact, as all the
# device's JSON (device.separators): every byte costs again in the CRC, COBS and USB. The first
# five keys are dev.summary()'s (device.SUMMARY), in its order (test_device_protocol holds them to it).
_STATUS = (b'{"state":"\x02","mode":"\x02","daily_dose_mcg":\x01,"rate_nl_per_day":\x01,'
           b'"concentration_mcg_per_ml":\x01,"reservoir_nl":\x01,"reservoir_capacity_nl":\x01,'
           b'"alarms":\x02,"alarm_date":\x01,"refill_date":\x01,"clock":\x01,"utc_offset_min":\x01,'
           b'"firmware_version":\x02,"serial":\x02,"therapy":{"strokes":\x01,"delivered_nl":\x01,'
           b'"primed_nl":\x01,"filled_nl":\x01,"since_refill_nl":\x01\x02}}')
_VERSION = json.dumps(FIRMWARE_VERSION).encode()
_STATUS_ROOM = len(_STATUS) + 11 * _STATUS.count(b"\x01") + len(_VERSION)  # + the other texts' lengths
_serial = [None, b"null"]  # (serial, its JSON): it is set once, at provisioning


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
            "mem_peak": dev.heap_peak, "log_failures": dev.storage.log_failures, "flash_writes": dev.hal.flash_writes}


def status(dev, args):
    """The pump's state as JSON text (a memoryview: device._execute sends it as it is)."""
    th = dev.therapy
    state, mode, daily, rate, conc = dev.summary_values()
    alarms = alarm_json(dev.alarms, dev)
    # when the level alarm fires, or fired: its time once raised, never "now"
    # predicted from the schedule when something changed (therapy/dates.py): kept, not walked here
    a = dev.alarms.active
    d = dev.alarms.dates
    serial = dev.identity()
    if serial != _serial[0]:
        _serial[0], _serial[1] = serial, json.dumps(serial).encode()
    extra = _detail(th)
    texts = (state, mode, alarms, _VERSION, _serial[1],
             b"," + json.dumps(extra, separators=separators).encode()[1:-1] if extra else b"")
    ints = (daily, rate, conc, th.reservoir_nl, dev.hal.capacity_ml * 1000000,
            a["low_reservoir"][0] if "low_reservoir" in a else d[0],
            a["empty_reservoir"][0] if "empty_reservoir" in a else d[1],
            th.now_s(), th.offset_min,
            # the ledger: strokes the rotor confirmed; since the last refill they + the reservoir = the fill
            th.strokes, (th.strokes - th.prime_strokes) * STROKE_NL, th.prime_strokes * STROKE_NL, th.filled_nl,
            (th.strokes - th.fill_strokes) * STROKE_NL)
    room = _STATUS_ROOM + len(state) + len(mode) + len(alarms) + len(texts[4]) + len(texts[5])
    # written into the link's frame buffer, which the answer's frame is then encoded into below it
    out = dev.deframer.answer_room(room) or memoryview(bytearray(room))
    return out[:link.fill(_STATUS, ints, texts, out)]


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
    """status's therapy parts beyond the ledger, by mode and what is under way (often none)."""
    t = th.t
    detail = {}
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
