"""Field checks shared by the request modules: each refusal names the field, the limit and the value."""

from dose import MAX_RATE_NL, MIN_RATE_NL, ml_text
from errors import CommandError, BAD_ARGUMENT, NOT_ALLOWED

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CATHETER_NL = 1000000  # 1 mL: longer than any intrathecal catheter (sim default)
MAX_BOLUS_S = 86400


def need_int(args, name, lo, hi, unit=""):
    v = args.get(name)
    if not isinstance(v, int) or isinstance(v, bool):
        raise CommandError(BAD_ARGUMENT, "%s must be a whole number%s, got %r" % (name, unit and " of " + unit, v))
    if v < lo or v > hi:
        raise CommandError(BAD_ARGUMENT, "%s %d is outside %d..%d%s" % (name, v, lo, hi, unit and " " + unit))
    return v


def need_drug(th):
    if not th.conc:
        raise CommandError(NOT_ALLOWED, "the reservoir has never been filled: refill first (concentration unknown)")


def check_rate(what, mcg, concs):
    """mcg/day must run within the pump's range at every concentration that will leave the
    catheter (the old one during a bridge, then the reservoir's); returns the largest rate."""
    top = 0
    for conc in concs:
        rate = mcg * (1000000 // conc)
        if rate < MIN_RATE_NL or rate > MAX_RATE_NL:
            raise CommandError(BAD_ARGUMENT, "%s %d mcg/day is %s mL/day at %d mcg/mL: outside the pump's rate "
                               "range 0.048..24 mL/day" % (what, mcg, ml_text(rate), conc))
        top = max(top, rate)
    return top


def concs_ahead(th):
    """Concentrations that will leave the catheter: the bridge's old drug, then the reservoir's."""
    return (th.bridge_conc, th.conc) if th.bridge_left else (th.conc,)


def check_total(rate, what):
    if rate > MAX_RATE_NL:
        raise CommandError(BAD_ARGUMENT, "%s would run the pump at %s mL/day: above its maximum 24 mL/day; "
                           "give the bolus over a longer duration" % (what, ml_text(rate)))


def override_reason(args, name):
    """The override's reason (also a stop's): None when not given, else 1..200 characters."""
    reason = args.get(name)
    if reason is None:
        return None
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 200:
        raise CommandError(BAD_ARGUMENT, "%s must be a reason of 1..200 characters, got %r"
                           % (name, reason if not isinstance(reason, str) else "%d characters" % len(reason)))
    return reason
