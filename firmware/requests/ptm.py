"""Patient bolus (PTM, spec §4, §7): the clinician's settings, and the patient's request.

dev.safety.ptm is None (off, the default) or [dose mcg, over s, max per 24 h, lockout s]; enabled, it
adds dose x max per day to the daily dose the limits see. dev.safety.ptm_used holds the device times of
the patient boluses of the last 24 h: a bolus waits for the lockout after the previous one, and
for the oldest of the last max-per-day to leave the 24 h window.
"""

from therapy import units
from core.errors import CommandError, BAD_ARGUMENT, NOT_ALLOWED, LIMIT
from safety.field_checks import MAX_BOLUS_S, need_int, override_reason, check_total, refused
from safety.bolus_fit import check_bolus, prescription_top
from safety.committed import applied
from safety.limits import ptm_x1440

DAY_S = 86400
BACLOFEN_WARNING = "patient boluses are not indicated for baclofen on some pumps: check the pump's labelling"


def ptm(dev, args):
    """No args: the settings and what is left today. enable: two-phase, like program (this is
    the check: it returns the plan; apply() applies it on a commit)."""
    if not args:
        return _view(dev)
    enable = args.get("enable")
    if not isinstance(enable, bool):
        raise CommandError(BAD_ARGUMENT, "enable must be true or false, got %r" % (enable,))
    reason = override_reason(args, "override")
    th = dev.therapy
    new = _settings(dev, args) if enable else None
    summary = ("patient bolus %d mcg over %d s, at most %d per 24 h, lockout %d s" % tuple(new)
               if new else "patient bolus off")
    return {"cmd": "ptm", "summary": summary, "reason": reason, "ptm": new,
            "new": None if th.mode == "stopped" else th.daily_x1440 + ptm_x1440(new),
            "prog": ["ptm", ptm_x1440(new) // 1440],
            "extra": {"ptm": _as_dict(new)}, "warnings": [BACLOFEN_WARNING] if new else []}


def apply(dev, plan, rv):
    old = dev.safety.ptm
    dev.safety.ptm = plan["ptm"]
    dev.log("ptm", tuple(old or (0, 0, 0, 0)) + tuple(dev.safety.ptm or (0, 0, 0, 0)))
    return applied(dev, rv, plan["reason"], plan["new"])


def _settings(dev, args):
    d = need_int(args, "dose_mcg", 1, 100, "mcg")
    over = need_int(args, "over_s", 60, MAX_BOLUS_S, "seconds")
    per_day = need_int(args, "max_per_day", 1, 24, "boluses per 24 h")
    lockout = need_int(args, "lockout_s", 900, DAY_S, "seconds")
    if over > lockout:
        raise CommandError(BAD_ARGUMENT, "over_s %d is longer than lockout_s %d: a patient bolus must end "
                           "before the next may start" % (over, lockout), refused("over_s", over, 60, lockout, "seconds"))
    th = dev.therapy
    if th.conc and th.mode != "stopped":
        concs = (th.conc,)
        prescription_top(th, concs)  # the running therapy itself fits (refuses with the numbers if not)
        check_bolus_rate(th, d, over, concs)
    return [d, over, per_day, lockout]


def check_bolus_rate(th, mcg, over, concs):
    rate = units.bolus_rate(mcg * units.nl_per_mcg(concs[0]), over * 10)[0]
    check_total(prescription_top(th, concs) + rate, "a patient bolus of %d mcg over %d s with the therapy" % (mcg, over))


def _as_dict(p):
    if not p:
        return {"enabled": False}
    return {"enabled": True, "dose_mcg": p[0], "over_s": p[1], "max_per_day": p[2], "lockout_s": p[3]}


def _recent(dev, now):
    """The patient boluses of the last 24 h (older ones dropped)."""
    used = dev.safety.ptm_used
    while used and used[0] <= now - DAY_S:
        used.pop(0)
    return used


def wait_s(dev, now):
    """(seconds until a patient bolus is allowed, the limit that holds it) or (0, None)."""
    p = dev.safety.ptm
    used = _recent(dev, now)
    if used and now - used[-1] < p[3]:
        return used[-1] + p[3] - now, "ptm_lockout"
    if len(used) >= p[2]:
        return used[len(used) - p[2]] + DAY_S - now, "ptm_daily_max"
    return 0, None


def _view(dev):
    out = _as_dict(dev.safety.ptm)
    now = dev.therapy.now_s()
    out["used_24h"] = len(_recent(dev, now)) if dev.safety.ptm else 0
    out["next_allowed_s"] = (now + wait_s(dev, now)[0]) if dev.safety.ptm else None
    out["utc_offset_min"] = dev.therapy.offset_min  # for the host to show local time
    return out


def patient_bolus(dev, args):
    """The patient's button: one bolus within the PTM limits, or the reason and the wait."""
    p = dev.safety.ptm
    if not p:
        raise CommandError(NOT_ALLOWED, "patient bolus is off: a clinician enables it (ptm --enable)")
    now = dev.therapy.now_s()
    wait, limit = wait_s(dev, now)
    if limit == "ptm_lockout":
        raise CommandError(LIMIT, "locked out: the last patient bolus was %d s ago, the lockout is %d s; next "
                           "allowed in %d s" % (now - dev.safety.ptm_used[-1], p[3], wait),
                           {"limit": limit, "override": False, "retry_in_s": wait})
    if limit:
        raise CommandError(LIMIT, "daily maximum reached: %d patient boluses in the last 24 h (at most %d); next "
                           "allowed in %d s" % (len(dev.safety.ptm_used), p[2], wait),
                           {"limit": limit, "override": False, "retry_in_s": wait})
    check_bolus(dev, p[0], p[1])
    dev.therapy.start_bolus(p[0], p[1] * 10)
    dev.safety.ptm_used.append(now)
    dev.log("ptm_bolus", (p[0], p[1], len(dev.safety.ptm_used), p[2]))
    out = dev.summary()
    out["bolus"] = {"dose_mcg": p[0], "over_s": p[1]}
    return out
