"""Persistent state: two CRC-protected copies, each written whole, then renamed into place.

A save writes state.tmp and renames it over the older of state.a / state.b
(rename is atomic on LittleFS), so a power cut at any instant leaves at
least one complete copy. Loaded on demand (Device.call) for every save.

The reservoir is recorded ahead of delivery, and the delivered strokes with it (one
ledger: strokes x 250 nL + reservoir = the volume filled): a save stores the estimate
minus the next checkpoint's volume (15 minutes at the current rate, at least
one stroke; none while nothing is delivered) and sets dev.storage.ckpt_floor there; the
device saves again when the reservoir reaches it (when stopped: at the first
stroke, should delivery ever start without a save). After a cut the restored estimate is therefore between
the truth minus one checkpoint and the truth: the low-reservoir alarm can
come early, never late.

Record: b"ITB1" | seq u32 | length u32 | JSON | CRC-32 u32 (big-endian).
"""

import json
import struct
from binascii import crc32

from therapy.units import STROKE_NL

SLOTS = ("state.a", "state.b")
MAGIC = b"ITB1"
CKPT_DAY_FRACTION = 96  # a checkpoint is 15 minutes of delivery: 1/96 of a day


def checkpoint(dev):
    """The reservoir reached the recorded level: record the next window ahead."""
    save(dev)


def save(dev):
    th = dev.therapy
    # whole strokes: the reservoir falls 250 nL a stroke, so it meets the floor exactly; nothing
    # ahead while nothing is delivered (a stopped pump's estimate must not fall at every save)
    window = max(1, -(-th.d.rate // CKPT_DAY_FRACTION // STROKE_NL)) * STROKE_NL if th.d.rate else 0
    committed = max(0, th.reservoir_nl - window)
    dev.storage.store_seq += 1
    body = json.dumps(_record(dev, committed, th.strokes + (th.reservoir_nl - committed) // STROKE_NL)).encode()
    head = MAGIC + struct.pack(">II", dev.storage.store_seq, len(body))
    crc = crc32(body, crc32(head))
    dev.hal.flash_write("state.tmp", head + body + struct.pack(">I", crc))
    dev.hal.flash_rename("state.tmp", SLOTS[dev.storage.store_seq % 2])
    dev.storage.ckpt_floor = committed


def _record(dev, committed, strokes):
    """The state as saved. One ledger: the strokes are recorded ahead by the same window as the
    reservoir (strokes x 250 nL + reservoir = what was filled), so after a cut the delivered count
    never goes back and the two still add up to the fill."""
    th = dev.therapy
    periodic = None
    if th.mode == "periodic":
        periodic = [th.p_dose, th.p_every, th.p_over, th.base_s + th.p_next // 10 if th.p_next >= 0 else -1]
    return {
        "fsm": dev.fsm.state, "mode": th.mode, "dose": th.dose, "daily": th.daily_x1440,
        "flex": th.flex, "periodic": periodic,
        "conc": th.conc, "res": committed, "cath": th.catheter_nl,
        "bconc": th.bridge_conc, "bleft": th.bridge_left, "off": th.offset_min,
        "min": th.minimum, "halt": th.halted,
        "strokes": strokes, "pstrokes": th.prime_strokes, "fill": [th.filled_nl, th.fill_strokes],
        "alarms": dev.alarms.active, "eri": dev.alarms.eri_s, "low": dev.safety.low_reservoir_nl,
        "lim": dev.safety.lim, "hist": dev.safety.hist, "past": dev.safety.past, "ptm": dev.safety.ptm, "ptmu": dev.safety.ptm_used,
        "auth": [dev.session.auth_fails, dev.session.auth_lock], "logseq": dev.storage.log_seq,
        "t": th.now_s(),
    }


def load(hal):
    """(newest valid record or None, its sequence number, copies present but invalid)."""
    best = None
    best_seq = -1
    bad = 0
    for name in SLOTS:
        data = hal.flash_read(name)
        if data is None:
            continue
        rec = _parse(data)
        if rec is None:
            bad += 1
        elif rec[0] > best_seq:
            best_seq, best = rec
    return best, best_seq, bad


def _parse(data):
    if len(data) < 16 or data[:4] != MAGIC:
        return None
    seq, length = struct.unpack(">II", data[4:12])
    if len(data) != 16 + length:
        return None
    (crc,) = struct.unpack(">I", data[12 + length:])
    if crc32(data[12:12 + length], crc32(data[:12])) != crc:
        return None
    try:
        return seq, json.loads(data[12:12 + length])
    except ValueError:
        return None
