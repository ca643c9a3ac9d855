"""The link's byte loops in bytecode: the twins of link_native.py's machine code, same signatures
and results, for where there is no native code (CPython tests, a VM without an emitter, a build
for another chip). link.py loads this module only then; tests/test_link_native.py holds the two
to the same results on the VM. Nothing here allocates.
"""


def crc16(data, n, table):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of data[:n] by the nibble table (link._TABLE)."""
    c = 0xFFFF
    for i in range(n):  # compiled to a counter loop: nothing allocated
        c ^= data[i] << 8
        c = ((c << 4) & 0xFFFF) ^ table[c >> 12]
        c = ((c << 4) & 0xFFFF) ^ table[c >> 12]
    return c


def take(src, start, end, raw, at):
    """Copy src[start:] up to the first 0x00 before end into raw from index at (as much as raw
    holds); the index of that 0x00 in src, or end when there is none."""
    room = len(raw)
    for i in range(start, end):
        b = src[i]
        if b == 0:
            return i
        if at < room:
            raw[at] = b
            at += 1
    return end


def cobs_decode(raw, n):
    """Decode the COBS frame raw[:n] (no delimiter) in place; its length, or -1 when a block
    runs past the end. Output never overtakes input, so one buffer serves both."""
    i = 0
    o = 0
    while i < n:
        code = raw[i]
        i += 1
        end = i + code - 1
        if end > n:
            return -1
        while i < end:
            raw[o] = raw[i]
            o += 1
            i += 1
        if code < 0xFF and i < n:
            raw[o] = 0
            o += 1
    return o


def fill(template, ints, strs, out):
    """An answer's JSON from a template, into out: template's bytes, each 0x01 replaced by the
    next of ints in decimal (None: null), each 0x02 by the next of strs as it is (bytes, or an
    ASCII str); the bytes written. out holds len(template) + 11 a 0x01 + the strs' lengths."""
    w = 0
    k = 0
    j = 0
    for b in template:
        if b == 1:
            x = ints[k]
            k += 1
            s = b"null" if x is None else str(x).encode()
        elif b == 2:
            s = strs[j]
            j += 1
            if isinstance(s, str):
                s = s.encode()
        else:
            out[w] = b
            w += 1
            continue
        out[w:w + len(s)] = s
        w += len(s)
    return w
