"""The limits request: read the safety limits, or set them (clinician; the hard maximum: service).

Every value is checked against its own range before any changes; a profile change brings the
titration limit into the new profile's range. Each change is logged with old and new values.
"""

from micropython import const
from core.errors import CommandError, BAD_ARGUMENT
from safety.field_checks import need_int, refused
from safety.limits import PROFILES, DECREASE_PCT, HIGH_DOSE_MCG, window

FACTORY_MAX_MCG = 2000  # the hard maximum is never provisioned above this
_HARD_MAX_FLOOR_MCG = const(100)  # ... nor set below this (or the initial cap); _const: folded, no heap
_BOLUS_CAP_MAX_MCG = const(500)  # the clinician bolus cap's largest setting
LOW_MIN_NL = 1000000  # the low-reservoir threshold's range, 1.0-5.0 mL (spec §5)
LOW_MAX_NL = 5000000
_FIELDS = ("profile", "titration_pct", "initial_cap_mcg", "bolus_cap_mcg", "low_reservoir_nl", "hard_max_mcg")
_KEYS = {"titration_pct": "titration", "initial_cap_mcg": "initial", "bolus_cap_mcg": "bolus_cap",
         "hard_max_mcg": "hard_max"}


def limits(dev, args):
    out = {"changed": [], "warnings": []}
    if args:
        _set(dev, args, out)
    lim = dev.safety.lim
    lo, hi = window(dev.safety.hist, dev.therapy.now_s())
    r = PROFILES[lim["profile"]]
    out.update({"profile": lim["profile"], "titration_pct": lim["titration"], "titration_range": [r[0], r[1]],
                "initial_cap_mcg": lim["initial"], "ceiling_mcg": lim["ceiling"], "hard_max_mcg": lim["hard_max"],
                "bolus_cap_mcg": lim["bolus_cap"], "low_reservoir_nl": dev.safety.low_reservoir_nl,
                "decrease_pct": DECREASE_PCT, "high_dose_mcg": HIGH_DOSE_MCG,
                "reference": {"min_mcg": None if lo < 0 else (lo + 720) // 1440,
                              "max_mcg": None if hi < 0 else (hi + 720) // 1440}})
    return out


def _set(dev, args, out):
    extra = [k for k in args if k not in _FIELDS]
    if extra:
        raise CommandError(BAD_ARGUMENT, "unknown limit %s (known: %s)" % (", ".join(extra), ", ".join(_FIELDS)))
    if "hard_max_mcg" in args and len(args) > 1:
        raise CommandError(BAD_ARGUMENT, "hard_max_mcg is a factory limit (service key): set it on its own")
    new = dict(dev.safety.lim)
    if "profile" in args:
        p = args["profile"]
        if p not in PROFILES:
            raise CommandError(BAD_ARGUMENT, "profile must be one of %s, got %r" % (", ".join(PROFILES), p),
                               refused("profile", p, None, None, ""))
        new["profile"] = p
        lo, hi, default = PROFILES[p]
        if "titration_pct" not in args and not lo <= new["titration"] <= hi:
            new["titration"] = default
            out["warnings"].append("titration limit set to the %s profile's default %d %% per 24 h" % (p, default))
    lo, hi = PROFILES[new["profile"]][:2]
    for name, key in _KEYS.items():
        if name in args:
            top = {"titration_pct": hi, "initial_cap_mcg": new["hard_max"], "bolus_cap_mcg": _BOLUS_CAP_MAX_MCG,
                   "hard_max_mcg": FACTORY_MAX_MCG}[name]
            bottom = {"titration_pct": lo, "hard_max_mcg": max(_HARD_MAX_FLOOR_MCG, new["initial"])}.get(name, 1)
            unit = "%% per 24 h (%s profile)" % new["profile"] if name == "titration_pct" else "mcg"
            new[key] = need_int(args, name, bottom, top, unit)
    low = dev.safety.low_reservoir_nl
    if "low_reservoir_nl" in args:
        low = need_int(args, "low_reservoir_nl", LOW_MIN_NL, LOW_MAX_NL, "nL (spec §5: 1.0-5.0 mL)")
    _apply(dev, new, low, out)


def _apply(dev, new, low, out):
    old = dev.safety.lim
    for key in ("profile", "titration", "initial", "bolus_cap", "hard_max"):
        if new[key] != old[key]:
            out["changed"].append(key)
            if key == "profile":
                dev.log("limits", (), "profile %s %s" % (old[key], new[key]))
            else:
                dev.log("limits", (old[key], new[key]), key)
    dev.safety.lim = new
    if low != dev.safety.low_reservoir_nl:
        out["changed"].append("low_reservoir")
        dev.log("limits", (dev.safety.low_reservoir_nl, low), "low_reservoir")
        dev.safety.low_reservoir_nl = low
        dev.call("alarms.rules", "reservoir", False)  # the level alarm rises or clears at the new threshold
    if new["hard_max"] < dev.safety.lim["ceiling"]:
        out["warnings"].append("the hard maximum %d mcg/day is below the ceiling: it is the ceiling now"
                               % new["hard_max"])
