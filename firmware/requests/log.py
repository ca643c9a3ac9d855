"""The `log` request (spec §6, §9): the newest event-log entries, a page at a time.

args: last 1..1000 (default 50); before (optional): only entries with seq < before.
When the entries asked for do not fit a page, the answer holds the newest that fit and
"truncated": true; the host asks again with before = the oldest seq it got.
Reading is here, not in event_log.py, which Device.log loads in the middle of other requests.
"""

import json
import struct
from micropython import const
from storage import event_log
from storage.event_log import CAPACITY, CHUNK, ENTRIES, REC
from core.errors import CommandError, BAD_ARGUMENT

# JSON bytes of entries per answer: well under the frame limit (MAX_PAYLOAD - HEADER_LEN - 100 would
# do for the link), because the heap must build and COBS-encode the answer in one piece. Measured
# on the 64-bit VM at the small-heap budget (72K = 64K + the sim HAL), 40-byte texts: 1500 ran,
# 1944 ran out of memory in link.encode (a crash, not an error answer). 800: 7 long entries a page.
_ROOM = 800
_LOG_LAST_MAX = const(1000)  # entries one request may ask for (the host pages beyond: host_tools/client.py)


def _arg(args, name, lo, hi, default):
    v = args.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
        raise CommandError(BAD_ARGUMENT, "%s must be a whole number %d..%d, got %r" % (name, lo, hi, v),
                           {"field": name, "value": v if isinstance(v, int) else repr(v), "min": lo, "max": hi, "unit": ""})
    return v


def log(dev, args):
    last = _arg(args, "last", 1, _LOG_LAST_MAX, 50)
    before = _arg(args, "before", 0, 0x3FFFFFFF, 0) if "before" in args else -1
    entries, bad, truncated = read(dev, last, before, _ROOM)
    return {"entries": entries, "bad": bad, "capacity": ENTRIES, "truncated": truncated,
            "utc_offset_min": dev.therapy.offset_min}  # for the host to show times in local time


def read(dev, last, before=-1, room=0):
    """Up to `last` valid entries with seq < before (-1: up to the newest), oldest first.

    With room > 0, no more than fit in room bytes of JSON (the newest ones). Returns
    (entries, bad, truncated): bad counts damaged records passed over (CRC or seq wrong).
    """
    top = event_log.last_seq(dev)
    low = max(0, top - CAPACITY + 1)
    if 0 <= before <= top:
        top = before - 1
    out = []
    cut = _walk(dev, out, top, low, last, room)
    out.reverse()
    return out, cut[0], cut[1]


def _entry(buf, i, more):
    """The entry whose first slot is slot i of buf; more: its continuation bodies, last first.
    A record (event_log.append) gives "n" (its integers), "codes" and "text" (its reason) when it
    has them; an entry of firmware before records only "text"."""
    seq, t, event, body = struct.unpack_from("<II12s40s", buf, i * REC)
    if more:
        more.append(body)
        more.reverse()
        body = b"".join(more)
    e = {"seq": seq, "time": t, "event": event.rstrip(b"\0").decode()}
    if body[0] != event_log.STRUCTURED:
        e["text"] = body.rstrip(b"\0").decode()
        return e
    n, k = body[1], body[2]
    at = 3 + 4 * n
    if n:
        e["n"] = list(struct.unpack_from("<%di" % n, body, 3))
    if k:
        e["codes"] = body[at:at + k].decode().split(" ")
    text = body[at + k:].rstrip(b"\0")
    if text:
        e["text"] = text.decode()
    return e


def _walk(dev, out, s, low, last, room):
    """Collect entries into out, newest first, from seq s down to low: (bad, truncated).

    Continuation slots come before (above) their entry's first slot: they are gathered, last
    part first, and joined when the first slot is reached; parts that do not lead down to a
    first slot (a power cut before it was written, or the ring's oldest entry overwritten) are
    dropped."""
    buf = bytearray(CHUNK * REC)
    c = -1
    n = bad = kept_bad = used = 0
    more = []  # texts of the continuation slots just above, the highest part first
    want = 0  # the part the next slot down must be to go on with them (0: none gathered)
    while s >= low and len(out) < last:
        if s % CAPACITY // CHUNK != c:
            c = s % CAPACITY // CHUNK
            n = event_log.load(dev, c, buf)
        i = s % CHUNK
        if event_log.seq_at(buf, n, i) != s:
            bad += 1
            more, want = [], 0
        else:
            part = event_log.part_at(buf, i)
            if part:
                if want and part != want:
                    more = []
                more.append(bytes(buf[i * REC + 8:i * REC + 60]))
                want = part - 1
            else:
                e = _entry(buf, i, more if want == 0 else [])
                more, want = [], 0
                if room:
                    used += len(json.dumps(e).encode()) + 2
                    if used > room:
                        return kept_bad, True  # bad ones after the last kept entry: the next page counts them
                out.append(e)
                kept_bad = bad
        s -= 1
    return bad, False
