"""The event log (spec §6): a ring of 6144 fixed 64-byte slots, each time-stamped and CRC-checked.

Loaded for one call (Device.log, the `log` request) and dropped after: nothing is kept here.
Only writing and the scan are here (Device.log loads this module in the middle of requests:
it stays small); reading a page of entries is requests/log.py's.
The newest sequence number lives in dev.storage.log_seq (absent or None: not known yet; last_seq()
finds it by one scan of the ring, the first time after boot).

An entry is a record, not a sentence: the event code, integers in device units, codes (an alarm,
a limit, a mode, a state...) and, for an override or a stop only, the reason; the host turns it
into a sentence (host_tools/log_events.py; docs/protocol.md `log` lists every event).

Slot, little-endian: word u32 | time u32 (device s) | event 12 B | record 40 B | CRC-32 of bytes 0..59.
word = seq | part << 28: seq is the slot's sequence number (below 2**28), part 0 marks an
entry's first slot. The record: 0xFF (STRUCTURED: UTF-8 text, what firmware 0.2 wrote, never
starts so), k u8, len(codes) u8, k x i32, codes (ASCII, space-separated), the reason (UTF-8),
NUL-padded. A record longer than 40 bytes goes on in up to 5 continuation slots (part 1..5, the
next sequence numbers), each holding 52 more bytes of it where the event and record fields are:
a record is at most 40 + 5 x 52 = 300 bytes, so the longest reason (checks.REASON_BYTES, 250)
is whole in one entry.

Capacity: an entry takes at most 6 slots (MAX_MORE + 1), so the ring of 6144 slots keeps the
newest 1024 entries whatever they hold (ENTRIES, spec §6: at least 1000), and up to 6144 when
each takes one slot, as most do.

Power cuts: the continuation slots are written first and the entry's first slot last, each in
one flash_write, so a cut leaves either the whole entry or none of it (continuations without
their first slot are never shown), and damages at most the slot being written.

The ring is 96 files log00.bin .. log95.bin of 64 slots (4 KB, one LittleFS block) each:
384 KB; an in-place write rewrites that one block, not the tail of one large file. Slot seq
goes to ring slot seq % 6144: file slot // 64, offset (slot % 64) * 64. Reads take 4 slots (256 bytes)
at a time with the HAL's flash_readinto; a HAL without it reads the whole file (4 KB: more heap).
"""

import gc
import struct
from binascii import crc32

CAPACITY = 6144  # slots in the ring
MAX_MORE = 5  # continuation slots at most
ENTRIES = CAPACITY // (MAX_MORE + 1)  # entries kept whatever they hold: 1024
REC = 64
PER_FILE = 64
CHUNK = 4  # records read at a time (256 bytes)
_FILE_CHUNKS = PER_FILE // CHUNK
_FMT = "<II12s40s"
_MORE_FMT = "<II52s"
_BODY = 60  # bytes covered by the CRC
HEAD_TEXT = 40  # text bytes in an entry's first slot
MORE_TEXT = 52  # text bytes in a continuation slot
PART = 1 << 28  # word = seq + part * PART
STRUCTURED = 0xFF  # a record's first byte (never in UTF-8: entries of firmware before 0.3 hold text)


def _fit(s, n):
    """s as UTF-8 in at most n bytes, not cutting a character."""
    b = str(s).encode()
    if len(b) > n:
        while n and b[n] & 0xC0 == 0x80:
            n -= 1
        b = b[:n]
    return b


def append(dev, event, n=(), codes="", text=""):
    """Write one entry: the next sequence number, device time, event code and its record (the
    integers n in device units, codes: identifiers such as an alarm or a limit, separated by
    spaces; text: free text, an override's or a stop's reason, whole: checks.REASON_BYTES);
    continuation slots first, the entry's first slot last."""
    seq = last_seq(dev) + 1
    c = codes.encode()
    body = bytearray(3 + 4 * len(n))
    body[0] = STRUCTURED
    body[1] = len(n)
    body[2] = len(c)
    for i in range(len(n)):
        struct.pack_into("<i", body, 3 + 4 * i, n[i])
    body = bytes(body) + c + _fit(text, HEAD_TEXT + MAX_MORE * MORE_TEXT - len(body) - len(c))
    more = (len(body) - HEAD_TEXT + MORE_TEXT - 1) // MORE_TEXT if len(body) > HEAD_TEXT else 0
    now = max(0, dev.therapy.now_s())
    rec = bytearray(REC)
    for k in range(more, 0, -1):
        at = HEAD_TEXT + (k - 1) * MORE_TEXT
        struct.pack_into(_MORE_FMT, rec, 0, seq + k + k * PART, now, body[at:at + MORE_TEXT])
        _write(dev, rec, seq + k)
    struct.pack_into(_FMT, rec, 0, seq, now, _fit(event, 12), body[:HEAD_TEXT])
    _write(dev, rec, seq)
    dev.storage.log_seq = seq + more
    return seq


def _write(dev, rec, seq):
    struct.pack_into("<I", rec, _BODY, crc32(rec[:_BODY]))
    slot = seq % CAPACITY
    dev.hal.flash_write("log%02d.bin" % (slot // PER_FILE), rec, slot % PER_FILE * REC)


def load(dev, c, buf):
    """Ring slots c*CHUNK .. c*CHUNK+CHUNK-1 into buf; returns the number of bytes there are."""
    name = "log%02d.bin" % (c * CHUNK // PER_FILE)
    off = c * CHUNK % PER_FILE * REC
    readinto = getattr(dev.hal, "flash_readinto", None)
    if readinto is not None:
        return readinto(name, off, buf) or 0
    gc.collect()
    data = dev.hal.flash_read(name)  # the whole file
    n = 0 if data is None else max(0, min(len(buf), len(data) - off))
    if n:
        buf[:n] = data[off:off + n]
    return n


def seq_at(buf, n, i):
    """The sequence number of slot i in buf (n bytes read); -1 if missing or damaged."""
    o = i * REC
    if o + REC > n or crc32(buf[o:o + _BODY]) != struct.unpack_from("<I", buf, o + _BODY)[0]:
        return -1
    return struct.unpack_from("<I", buf, o)[0] % PART


def part_at(buf, i):
    """0 for an entry's first slot, k for its k-th continuation (slot i of buf, checked by seq_at)."""
    return struct.unpack_from("<I", buf, i * REC)[0] // PART


def resume(dev, seq):
    """The newest entry, found from the one the last saved state knew (seq): only the slots
    written since are read, not the whole ring (6144 slots take seconds on a Pico's boot). None
    (no saved state, or one from before this field): the whole ring, as last_seq."""
    if seq is None:
        return last_seq(dev)
    chunks = CAPACITY // CHUNK
    buf = bytearray(CHUNK * REC)
    c = (seq + 1) % CAPACITY // CHUNK
    for _ in range(chunks):
        n = load(dev, c, buf)
        newest = -1
        for i in range(CHUNK):
            newest = max(newest, seq_at(buf, n, i))
        if newest <= seq:
            break  # nothing written here since: the slots of an earlier lap, or none
        seq = newest
        c = (c + 1) % chunks
    dev.storage.log_seq = seq
    return seq


def last_seq(dev):
    """Sequence number of the newest entry (-1: empty log); scans the ring once after boot."""
    seq = getattr(dev.storage, "log_seq", None)
    if seq is None:
        seq = -1
        buf = bytearray(CHUNK * REC)
        c = 0
        while c < CAPACITY // CHUNK:
            n = load(dev, c, buf)
            if n == 0 and c % _FILE_CHUNKS == 0:
                # an empty or missing file holds no slot (a write at an offset fills the gap
                # before it): skip it, not open it once a chunk (a new pump's first boot read
                # all 1536 chunks of a log that was not there: ~7 s of a Pico's CPU)
                c += _FILE_CHUNKS
                continue
            for i in range(CHUNK):
                seq = max(seq, seq_at(buf, n, i))
            c += 1
        dev.storage.log_seq = seq
    return seq
