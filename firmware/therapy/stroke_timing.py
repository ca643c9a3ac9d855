"""Stroke timing that follows the programmed volume exactly, for months, without drift.

`acc` holds volume programmed but not yet pumped, in nL*ds/day units. At rate
R (nL/day) each decisecond adds R; a stroke is due the first decisecond acc
reaches K_STROKE. Rate changes keep acc, so they are exact at the boundary.
Every value stays below K_STROKE + MAX_RATE_NL < 2**30: small ints, and the
stroke step allocates nothing.
"""

from therapy.units import K_STROKE


class Delivery:
    def __init__(self):
        self.acc = 0
        self.rate = 0
        self.strokes = 0

    def until_stroke(self):
        """Deciseconds until the next stroke is due; -1 when nothing is being delivered."""
        r = self.rate
        if r <= 0:
            return -1 if self.acc < K_STROKE else 0
        need = K_STROKE - self.acc
        if need <= 0:
            return 0
        return (need + r - 1) // r

    def run(self, ds):
        """Let ds pass (never past the next stroke); True when a stroke is due now."""
        self.acc += self.rate * ds
        if self.acc >= K_STROKE:
            self.acc -= K_STROKE
            self.strokes += 1
            return True
        return False
