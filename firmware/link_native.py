"""The link's byte loops as machine code (viper): CRC-16, the receive scan, COBS decode.

In bytecode these loops were most of a status request's CPU on a Pico (a 500-byte answer's
CRC-16 alone ~6.7 ms at 125 MHz, a 35-byte request's deframing ~2 ms; docs/rp2040.md). Same
signatures and results as their bytecode twins in link_bytecode.py, which run where there is
no native code (CPython tests, a VM without an emitter, a build for another chip);
tests/test_link_native.py holds the two to the same results on the VM.

The build compiles this module for the target chip (mpy-cross -march, host_tools/firmware_build.py):
a .mpy built for another chip does not import (ValueError), and link.py loads the bytecode twins.
Nothing here allocates.
"""

import micropython


@micropython.viper
def crc16(data, n: int, table) -> int:
    """CRC-16/CCITT-FALSE of data[:n] by the nibble table (link._TABLE)."""
    d = ptr8(data)
    t = ptr16(table)
    c = 0xFFFF
    i = 0
    while i < n:
        c ^= d[i] << 8
        c = ((c << 4) & 0xFFFF) ^ t[c >> 12]
        c = ((c << 4) & 0xFFFF) ^ t[c >> 12]
        i += 1
    return c


@micropython.viper
def take(src, start: int, end: int, raw, at: int) -> int:
    """Copy src[start:] up to the first 0x00 before end into raw from index at (as much as raw
    holds); the index of that 0x00 in src, or end when there is none."""
    s = ptr8(src)
    r = ptr8(raw)
    room = int(len(raw))
    i = start
    while i < end:
        b = s[i]
        if b == 0:
            return i
        if at < room:
            r[at] = b
            at += 1
        i += 1
    return end


@micropython.viper
def cobs_decode(raw, n: int) -> int:
    """Decode the COBS frame raw[:n] (no delimiter) in place; its length, or -1 when a block
    runs past the end. Output never overtakes input, so one buffer serves both."""
    r = ptr8(raw)
    i = 0
    o = 0
    while i < n:
        code = r[i]
        i += 1
        end = i + code - 1
        if end > n:
            return -1
        while i < end:
            r[o] = r[i]
            o += 1
            i += 1
        if code < 0xFF and i < n:
            r[o] = 0
            o += 1
    return o


_NULL = None  # viper compares objects by identity with a name, not the None literal


@micropython.viper
def fill(template, ints, strs, out) -> int:
    """An answer's JSON from a template, into out: template's bytes, each 0x01 replaced by the
    next of ints in decimal (None: null), each 0x02 by the next of strs as it is (bytes, or an
    ASCII str); the bytes written. out holds len(template) + 11 a 0x01 + the strs' lengths."""
    t = ptr8(template)
    tn = int(len(template))
    o = ptr8(out)
    w = 0
    k = 0
    j = 0
    i = 0
    while i < tn:
        b = t[i]
        i += 1
        if b == 1:
            x = ints[k]
            k += 1
            if x is _NULL:
                o[w] = 110  # null
                o[w + 1] = 117
                o[w + 2] = 108
                o[w + 3] = 108
                w += 4
                continue
            v = int(x)
            if v < 0:
                o[w] = 45  # -
                w += 1
                v = 0 - v
            d = 1
            while v // d >= 10:
                d *= 10
            while d > 0:
                o[w] = 48 + (v // d) % 10
                w += 1
                d //= 10
        elif b == 2:
            s = strs[j]
            j += 1
            p = ptr8(s)
            n = int(len(s))
            m = 0
            while m < n:
                o[w] = p[m]
                w += 1
                m += 1
        else:
            o[w] = b
            w += 1
    return w
