"""The priming bolus after a catheter change (two-phase): catheter + pump tubing at 24 mL/day.

Loaded for the request only. With review=True it answers the review and changes nothing.
"""

import dose
from errors import CommandError, NOT_ALLOWED
from checks import MAX_CATHETER_NL, need_int, need_drug
from review import build, applied


def prime(dev, args, review=False):
    th = dev.therapy
    need_drug(th)
    if not dev.fsm.can("prime"):
        raise CommandError(NOT_ALLOWED, "cannot prime while the pump is %s" % dev.fsm.state)
    cath = need_int(args, "catheter_nl", 0, MAX_CATHETER_NL, "nL")
    rv = build(dev, "prime", "prime catheter %s mL + pump tubing %s mL at 24 mL/day"
               % (dose.ml_text(cath), dose.ml_text(dose.TUBING_NL)))
    rv["new"]["prime_nl"] = cath + dose.TUBING_NL
    rv["warnings"].append("therapy pauses while priming (about %d min), then resumes"
                          % ((cath + dose.TUBING_NL) * 1440 // dose.MAX_RATE_NL + 1))
    if review:
        return rv
    th.prime(cath)
    dev.fsm.fire("prime")
    dev.log("prime", "catheter %d nL + tubing" % cath)
    return applied(dev, rv)
