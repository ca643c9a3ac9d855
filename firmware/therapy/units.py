"""Delivery units and conversions: integers only, every hot-path value below 2**30.

Time is in deciseconds (ds) and rates in whole nL/day: for every library
concentration 10**6 / C is a whole number of nL per mcg, so mcg/day -> nL/day
is exact. One stroke is STROKE_NL (250 nL); the delivery accumulator counts nL*ds/day,
so a stroke is K_STROKE = STROKE_NL * DS_PER_DAY = 216,000,000 units (< 2**30).

STROKE_NL, TUBING_NL, the rate range, LIBRARY and MAX_FLEX_STEPS are the one place of these
facts: the host reads them as data (host_tools/pump_facts.py), tests/test_one_place.py checks
the docs against them.
"""

from micropython import const

STROKE_NL = const(250)  # sim default stroke volume
DS_PER_DAY = const(864000)
K_STROKE = const(STROKE_NL * DS_PER_DAY)  # folded at compile time; must stay < 2**30
MIN_RATE_NL = const(48000)  # 0.048 mL/day: the minimum rate keeps the catheter patent
MAX_RATE_NL = const(24000000)  # 24 mL/day
TUBING_NL = const(140000)  # pump tubing: 0.140 mL (the corrected 2016 value, not 0.199)
LIBRARY = (50, 500, 1000, 2000)  # drug library concentrations, mcg/mL
MAX_FLEX_STEPS = const(13)
MIN_PER_DAY = const(1440)


def nl_per_mcg(conc):
    """nL of drug holding one mcg at this library concentration (exact)."""
    return 1000000 // conc


def ml_text(nl):
    """nL as mL with 6 decimals, for messages (no float)."""
    return "%d.%06d" % (nl // 1000000, nl % 1000000)


def bolus_rate(volume_nl, over_ds):
    """(rate nL/day, leftover accumulator units) delivering volume_nl in exactly over_ds.

    volume * DS_PER_DAY may exceed 2**30: computed once when a bolus starts,
    never in the stroke step. The leftover (< over_ds units, under 1 nL for a
    bolus up to a day) is added when the bolus ends, so its volume is exact.
    """
    total = volume_nl * DS_PER_DAY
    rate = total // over_ds
    return rate, total - rate * over_ds
