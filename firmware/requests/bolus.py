"""The clinician single bolus (two-phase): within the bolus cap, on top of the running therapy.

Loaded for the request only: bolus() checks and returns the plan (safety/review.py reviews it),
apply() starts it on a commit.
"""

from therapy import units
from core.errors import CommandError, LIMIT
from safety.field_checks import MAX_BOLUS_S, DOSE_FIELD_MAX_MCG, need_int
from safety.bolus_fit import check_bolus
from safety.committed import applied


def bolus(dev, args):
    """A clinician single bolus: within the bolus cap (limits), on top of running therapy."""
    mcg = need_int(args, "dose_mcg", 1, DOSE_FIELD_MAX_MCG, "mcg")
    over = need_int(args, "over_s", 1, MAX_BOLUS_S, "seconds")
    cap = dev.safety.lim["bolus_cap"]
    if mcg > cap:
        raise CommandError(LIMIT, "bolus cap: %d mcg is above the clinician single-bolus cap %d mcg "
                           "(limits --bolus-cap)" % (mcg, cap), {"limit": "bolus_cap", "override": False})
    check_bolus(dev, mcg, over)
    th = dev.therapy
    volume = mcg * units.nl_per_mcg(th.conc)
    now = th.now_s()
    # the new side: the same prescription, its dates with this bolus from now (therapy/dates.py)
    return {"cmd": "bolus", "summary": "bolus %d mcg over %d s" % (mcg, over), "mcg": mcg, "over": over,
            "extra": {"bolus": {"dose_mcg": mcg, "over_s": over, "volume_nl": volume,
                                "starts_s": now, "ends_s": now + over}}}


def apply(dev, plan, rv):
    dev.therapy.start_bolus(plan["mcg"], plan["over"] * 10)
    dev.log("bolus", (plan["mcg"], plan["over"], dev.therapy.conc))
    return applied(dev, rv)
