"""The link's CRC-16 as machine code (viper), for a build whose chip has no hand-written version
(native/thumb/link_crc.py takes its place on a Pico's Cortex-M0+): the virtual Pico's. Same
signature and results as its bytecode twin in core/link_bytecode.py (tests/test_link_native.py).
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
