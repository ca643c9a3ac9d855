"""CRC-16 and status's template writer in bytecode: the twins of link_native.py's machine code, same signatures
and results, for where there is no native code (CPython tests, a VM without an emitter, a build
for another chip). link.py loads this module only then; tests/test_link_native.py holds the two
to the same results on the VM.
"""


def crc16(c, n, data):
    """The CRC-16/CCITT-FALSE register c carried over data[:n] (start with 0xFFFF), by shifts."""
    for i in range(n):  # compiled to a counter loop: nothing allocated
        x = ((c >> 8) ^ data[i]) & 0xFF
        x ^= x >> 4
        c = ((c << 8) ^ (x << 12) ^ (x << 5) ^ x) & 0xFFFF
    return c


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
