"""The emulated RP2040 back end of the rig: rp2040js running the real rp2 MicroPython (board.js)."""
