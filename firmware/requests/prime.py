"""The priming bolus after a catheter change (two-phase): catheter + pump tubing at 24 mL/day.

Loaded for the request only: prime() checks and returns the plan (safety/review.py reviews it),
apply() starts priming on a commit.
"""

from therapy import units
from core.errors import CommandError, NOT_ALLOWED
from safety.field_checks import MAX_CATHETER_NL, need_int, need_drug, state_words
from safety.committed import applied


def prime(dev, args):
    th = dev.therapy
    need_drug(th)
    if not dev.fsm.can("prime"):
        raise CommandError(NOT_ALLOWED, "cannot prime while the pump is %s" % state_words(dev.fsm.state))
    cath = need_int(args, "catheter_nl", 0, MAX_CATHETER_NL, "nL")
    total = cath + units.TUBING_NL
    return {"cmd": "prime", "cath": cath, "extra": {"prime_nl": total},
            "summary": "prime catheter %s mL + pump tubing %s mL at 24 mL/day"
                       % (units.ml_text(cath), units.ml_text(units.TUBING_NL)),
            "warnings": ["therapy pauses while priming (about %d min), then resumes"
                         % (total * 1440 // units.MAX_RATE_NL + 1)]}


def apply(dev, plan, rv):
    cath = plan["cath"]
    dev.therapy.prime(cath)
    dev.fsm.fire("prime")
    dev.log("prime", (cath, units.TUBING_NL))
    return applied(dev, rv)
