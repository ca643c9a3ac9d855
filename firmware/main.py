"""Entry point, the same file on a Pico and on the virtual Pico: pick the HAL, run."""

import sys

if sys.platform == "rp2":
    from hal.rp2 import Hal
else:
    from hal.sim import Hal

import app

app.run(Hal())
