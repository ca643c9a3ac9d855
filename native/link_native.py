"""Two byte loops of the link as machine code (viper): CRC-16, and fill, status's JSON template writer.

Outside firmware/ because machine code compiles only for a target chip (mpy-cross -march):
firmware/ runs copied as is on any board; a build for a chip adds this module beside it.

In bytecode, with json.dumps, these were most of a status request's CPU on a Pico (a 500-byte
answer's CRC-16 alone ~6.7 ms at 125 MHz; docs/rp2040.md). Each function's machine code costs
heap on a Pico (this module 2.5 KB with two more, which went: the deframer copies with C's
bytes.find and slices instead), so only these two are here. Same
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
