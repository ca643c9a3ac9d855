"""Field checks shared by the request modules: each refusal names the field, the limit and the value.

A refused field is also structured, for the host to render in its user's units: the error's
detail is {"field": request field, "value": what was sent, "min", "max": the bounds (absent when
none applies), "unit": the field's device unit}. The text stays for other clients.
"""

from micropython import const
from therapy.units import MAX_RATE_NL, MIN_RATE_NL, ml_text
from core.errors import CommandError, BAD_ARGUMENT, NOT_ALLOWED

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CATHETER_NL = 1000000  # 1 mL: longer than any intrathecal catheter (sim default)
MAX_BOLUS_S = 86400
DOSE_FIELD_MAX_MCG = const(100000)  # any dose field's bound, mcg or mcg/day: the limits (safety/limits.py) refuse far less


def refused(name, v, lo, hi, unit):
    """The structured detail of a refused field (see the module's docstring)."""
    d = {"field": name, "value": v, "unit": unit}
    if lo is not None:
        d["min"] = lo
    if hi is not None:
        d["max"] = hi
    return d


def need_int(args, name, lo, hi, unit=""):
    v = args.get(name)
    if not isinstance(v, int) or isinstance(v, bool):
        raise CommandError(BAD_ARGUMENT, "%s must be a whole number%s, got %r" % (name, unit and " of " + unit, v),
                           refused(name, v if v is None or isinstance(v, (str, float)) else repr(v), lo, hi, unit))
    if v < lo or v > hi:
        raise CommandError(BAD_ARGUMENT, "%s %d is outside %d..%d%s" % (name, v, lo, hi, unit and " " + unit),
                           refused(name, v, lo, hi, unit))
    return v


def state_words(state):
    """A pump state as a person says it ("the pump is ...")."""
    return {"minimum_rate": "at the minimum rate", "alarm_critical": "halted by a critical alarm"}.get(state, state)


def need_drug(th):
    if not th.conc:
        raise CommandError(NOT_ALLOWED, "the reservoir has never been filled: refill first (concentration unknown)")


def check_rate(what, mcg, concs, field=None):
    """mcg/day must run within the pump's range at every concentration that will leave the
    catheter (the old one during a bridge, then the reservoir's); returns the largest rate.
    field: the request field that set it (None: the running prescription's)."""
    top = 0
    for conc in concs:
        per = 1000000 // conc
        rate = mcg * per
        if rate < MIN_RATE_NL or rate > MAX_RATE_NL:
            d = refused(field, mcg, -(-MIN_RATE_NL // per), MAX_RATE_NL // per, "mcg/day") if field else {}
            d["concentration"] = conc
            raise CommandError(BAD_ARGUMENT, "%s %d mcg/day is %s mL/day at %d mcg/mL: outside the pump's rate "
                               "range 0.048..24 mL/day" % (what, mcg, ml_text(rate), conc), d)
        top = max(top, rate)
    return top


def concs_ahead(th):
    """Concentrations that will leave the catheter: the bridge's old drug, then the reservoir's."""
    return (th.bridge_conc, th.conc) if th.bridge_left else (th.conc,)


def check_total(rate, what):
    if rate > MAX_RATE_NL:
        raise CommandError(BAD_ARGUMENT, "%s would run the pump at %s mL/day: above its maximum 24 mL/day; "
                           "give the bolus over a longer duration" % (what, ml_text(rate)))


# a reason's length: characters, and bytes of UTF-8: an entry of the event log holds 40 + 5 x 52
# bytes of text (storage/event_log.py), of which the longest prefix (an override's limit and dose, a stop's
# old therapy) takes 48 (the host reads both: host_tools/pump_facts.py; _const: folded, no heap)
_REASON_CHARS = const(200)
REASON_BYTES = 250


def override_reason(args, name):
    """The override's reason (also a stop's): None when not given, else 1.._REASON_CHARS characters
    and at most REASON_BYTES in UTF-8, so the event log keeps it whole in one entry (storage/event_log.py)."""
    reason = args.get(name)
    if reason is None:
        return None
    if not isinstance(reason, str) or not reason.strip() or len(reason) > _REASON_CHARS:
        n = len(reason.strip()) if isinstance(reason, str) else None
        got = reason if not isinstance(reason, str) else "%d characters" % len(reason)
        raise CommandError(BAD_ARGUMENT, "%s must be a reason of 1..%d characters, got %r" % (name, _REASON_CHARS, got),
                           refused(name, n, 1, _REASON_CHARS, "characters"))
    n = len(reason.encode())
    if n > REASON_BYTES:
        raise CommandError(BAD_ARGUMENT, "%s must be at most %d bytes of UTF-8 (the event log keeps it whole), got %d"
                           % (name, REASON_BYTES, n), refused(name, n, 1, REASON_BYTES, "bytes"))
    return reason
