"""CRC-16/CCITT-FALSE in Thumb assembler, for a build whose chip runs Thumb code (a Pico's
Cortex-M0+: armv6m). It takes native/link_crc.py's place there, with the same name, signature and
results (tests/test_rp2040_native.py holds it to the host's CRC on the emulated RP2040).

Why assembler: viper's CRC-16 of status's ~450-byte answer was ~0.47 ms of a status's ~5.1 ms on
an RP2040 (about 130 cycles a byte: on Thumb the emitter keeps only its first three locals, the
arguments here, in registers, and moves every other one through the stack for each operation).
This loop is 16 instructions a byte, all in registers (docs/rp2040.md). Nothing here allocates.
"""

import micropython


@micropython.asm_thumb
def crc16(r0, r1, r2):
    """The CRC-16/CCITT-FALSE register r0 carried over the r1 bytes at r2 (start with 0xFFFF).
    The byte at a time by shifts, no table (as link_crc.py): x = (c >> 8) ^ byte; x ^= x >> 4;
    c = (c << 8) ^ (x << 12) ^ (x << 5) ^ x, kept to 16 bits."""
    add(r1, r1, r2)  # r1: the end address
    label(LOOP)
    cmp(r2, r1)
    bcs(DONE)  # unsigned: r2 >= end
    ldrb(r3, [r2, 0])
    add(r2, 1)
    lsr(r4, r0, 8)
    eor(r4, r3)  # x = (c >> 8) ^ byte: both below 256
    lsr(r3, r4, 4)
    eor(r4, r3)  # x ^= x >> 4
    lsl(r0, r0, 8)
    eor(r0, r4)
    lsl(r3, r4, 5)
    eor(r0, r3)
    lsl(r3, r4, 12)
    eor(r0, r3)
    lsl(r0, r0, 16)  # & 0xFFFF
    lsr(r0, r0, 16)
    b(LOOP)
    label(DONE)
