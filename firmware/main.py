"""Entry point, the same file on a Pico and on the virtual Pico: pick the HAL, run.

An uncaught exception must never print onto the link (it is stdout) nor leave
the board in the REPL: it is written to crash.log in flash, then the board resets.
Only the maintenance jumper, set by hand at power-up, leaves the REPL open (itbpump flash).
"""

import sys

if sys.platform == "rp2":
    from hal.rp2 import Hal, maintenance_jumper
else:
    from hal.sim import Hal, maintenance_jumper

if maintenance_jumper():
    print("itbpump: maintenance jumper set: pump firmware not started (REPL open for itbpump flash)")
else:
    from core import loop

    hal = Hal()
    try:
        loop.run(hal)
    except Exception as e:  # noqa: BLE001 - last line of defence
        try:
            with open("crash.log", "a") as f:
                sys.print_exception(e, f)
        finally:
            hal.reset()
