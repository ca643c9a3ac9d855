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
def crc16(c: int, n: int, data) -> int:
    """The CRC-16/CCITT-FALSE register c carried over data[:n] (start with 0xFFFF). A byte at a
    time by shifts, no table: nothing to load from memory but the byte, and the register is the
    first local, which viper from mpy-cross keeps in a register (one, with three arguments)."""
    d = ptr8(data)
    i = 0
    while i < n:
        x = ((c >> 8) ^ d[i]) & 0xFF
        x ^= x >> 4
        c = ((c << 8) ^ (x << 12) ^ (x << 5) ^ x) & 0xFFFF
        i += 1
    return c


_NULL = None  # viper compares objects by identity with a name, not the None literal


@micropython.viper
def fill(template, ints, strs, out) -> int:
    """An answer's JSON from a template, into out: template's bytes, each 0x01 replaced by the
    next of ints in decimal (None: null), each 0x02 by the next of strs as it is (bytes, or an
    ASCII str); the bytes written. out holds len(template) + 11 a 0x01 + the strs' lengths.

    Walks addresses (uint) rather than indexing: viper keeps few locals in registers on Thumb,
    and an index costs a load, an add and a store more a byte (15 % faster, 60 bytes smaller)."""
    t = uint(ptr8(template))
    te = t + uint(len(template))
    o = uint(ptr8(out))
    o0 = o
    k = 0
    j = 0
    while t < te:
        b = ptr8(t)[0]
        t += 1
        if b > 2 or b == 0:  # the template's own bytes: most of them
            ptr8(o)[0] = b
            o += 1
            continue
        if b == 1:
            x = ints[k]
            k += 1
            if x is _NULL:
                q = ptr8(o)
                q[0] = 110  # null
                q[1] = 117
                q[2] = 108
                q[3] = 108
                o += 4
                continue
            v = int(x)
            if v < 0:
                ptr8(o)[0] = 45  # -
                o += 1
                v = 0 - v
            d = 1
            while v // d >= 10:
                d *= 10
            while d > 0:
                ptr8(o)[0] = 48 + (v // d) % 10
                o += 1
                d //= 10
        else:
            s = strs[j]
            j += 1
            p = uint(ptr8(s))
            pe = p + uint(len(s))
            while p < pe:
                ptr8(o)[0] = ptr8(p)[0]
                o += 1
                p += 1
    return int(o - o0)
