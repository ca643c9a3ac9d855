"""The limits' verdict on a new daily dose (spec §4): titration, initial-dose cap, ceiling,
hard maximum, decrease guard, high-dose warning.

The device is the authority: the host only shows what these rules answer. Loaded (by
safety/review.py) only for a change of the daily dose. Doses are mcg/day x 1440, as in safety/limits.py.
"""

from core.errors import CommandError, LIMIT
from safety.limits import window, full_until, high_step, MAX_HIST, mcg_text, pct_tenths, pct_text, DECREASE_PCT, HIGH_DOSE_MCG, HIGH_STEP_PCT


def check(dev, new, override, stopping=False, windows=()):
    """(warnings, [(limit, text)] the override passes) for a new worst-case daily dose, or refuse.

    Every limit is tested; the binding one is the most restrictive of those the override
    cannot pass. A refusal names it with the numbers and lists the others. windows: what the
    limits over rolling 24 h found (safety/window_rules.py, loaded apart: the two never share the heap).
    """
    lim = dev.safety.lim
    now = dev.therapy.now_s()
    until = 0 if stopping else full_until(dev.safety.hist, now)  # a stop is always possible
    if until:
        raise CommandError(LIMIT, "dose history full: the pump keeps %d daily doses of the last 24 h and all are in "
                           "use; the next dose change is possible in %d s (a stop is always possible)"
                           % (MAX_HIST, until - now), {"limit": "history_full", "override": False,
                                                          "retry_in_s": until - now})
    lo, hi = window(dev.safety.hist, now)
    bad = []
    if stopping:
        if hi > 0:
            bad.append((0, "decrease", True, "stopping therapy: the daily dose in the last 24 h was up to %s "
                        "mcg/day; an abrupt stop risks withdrawal" % mcg_text(hi)))
    else:
        _increase(lim, lo, new, bad)
        have = [b[1] for b in bad]
        for b in windows:  # a limit the daily dose already breaks is named once
            if b[1] not in have and not (b[1] == "titration_window" and "titration" in have):
                bad.append(b)
        if hi > 0 and new * 100 < hi * (100 - DECREASE_PCT):
            bad.append((0, "decrease", True, "decrease guard: %s mcg/day is %s against the highest daily dose "
                        "in the last 24 h (%s mcg/day); more than -%d %% needs an override (at least %s without)"
                        % (mcg_text(new), pct_text(pct_tenths(new, hi)), mcg_text(hi), DECREASE_PCT,
                           mcg_text(-(-hi * (100 - DECREASE_PCT) // 100)))))
    block = [b for b in bad if not (b[2] and override)]
    if block:
        block.sort(key=lambda b: (b[2], b[0]))  # what no override passes first, then the tightest
        first = block[0]
        others = [b[1] for b in block[1:]]
        detail = {"limit": first[1], "override": all(b[2] for b in block)}
        if len(first) > 4:
            detail.update(first[4])
        raise CommandError(LIMIT, first[3] + ("; also over: " + ", ".join(others) if others else ""), detail)
    warnings = []
    if high_step(lo, new):
        warnings.append("high dose: %s over %s mcg/day is more than +%d %% at a dose of %d mcg/day or more; "
                        "may be excessive" % (pct_text(pct_tenths(new, lo)), mcg_text(lo), HIGH_STEP_PCT, HIGH_DOSE_MCG))
    return warnings, [(b[1], b[3]) for b in bad]


def _increase(lim, lo, new, bad):
    """Upper limits, each with the largest dose it allows (x1440), into bad when exceeded."""
    hard = lim["hard_max"] * 1440
    if new > hard:
        bad.append((hard, "hard_max", False, "hard maximum: %s mcg/day is above the pump's hard maximum %d "
                    "mcg/day (no override)" % (mcg_text(new), lim["hard_max"])))
    if lo > 0:
        pct = lim["titration"]
        top = lo * (100 + pct) // 100
        if new > top:
            bad.append((top, "titration", False, "titration limit: %s mcg/day is %s over the lowest daily dose in "
                        "the last 24 h (%s mcg/day); the %s profile's limit is +%d %% (at most %s mcg/day)"
                        % (mcg_text(new), pct_text(pct_tenths(new, lo)), mcg_text(lo), lim["profile"], pct,
                           mcg_text(top))))
    elif new > lim["initial"] * 1440:
        bad.append((lim["initial"] * 1440, "initial_cap", True, "initial-dose cap: %s mcg/day with no dose in "
                    "effect in the last 24 h is above %d mcg/day; needs an override"
                    % (mcg_text(new), lim["initial"])))
    ceiling = min(lim["ceiling"], lim["hard_max"]) * 1440
    if new > ceiling:
        bad.append((ceiling, "ceiling", True, "ceiling: %s mcg/day is above %d mcg/day (limited clinical "
                    "experience); needs an override" % (mcg_text(new), ceiling // 1440)))
