"""Whether a bolus fits on top of the running therapy: the pump's maximum rate at its fastest moment.

Shared by the clinician bolus (requests/bolus.py) and the patient bolus (requests/ptm.py).
"""

from therapy import units
from core.errors import CommandError, NOT_ALLOWED
from safety.field_checks import check_rate, check_total, concs_ahead, state_words


def prescription_top(th, concs):
    """The running prescription's fastest volume rate with its periodic bolus, checked at concs."""
    mode = th.mode
    if mode == "continuous":
        return check_rate("the current dose", th.dose, concs)
    if mode == "flex":
        top = 0
        for day in th.flex:
            for _, mcg in day:
                top = max(top, check_rate("the current flex step", mcg, concs))
        return top
    if mode == "periodic":
        top = check_rate("the current basal", th.dose, concs)
        worst = 0
        for conc in concs:
            worst = max(worst, units.bolus_rate(th.p_dose * (1000000 // conc), th.p_over)[0])
        return top + worst
    return 0


def check_bolus(dev, mcg, over):
    """Refuse a bolus of mcg over `over` seconds unless therapy runs, no bolus runs, and the
    therapy's fastest moment (flex step, periodic bolus) with it stays within the pump's rate."""
    th = dev.therapy
    if dev.fsm.state != "running":
        raise CommandError(NOT_ALLOWED, "a bolus goes on top of running therapy; the pump is %s" % state_words(dev.fsm.state))
    if th.b_end >= 0:
        raise CommandError(NOT_ALLOWED, "a bolus is already running (%d mcg); wait until it ends" % th.b_dose)
    concs = concs_ahead(th)
    worst = 0
    for conc in concs:
        worst = max(worst, units.bolus_rate(mcg * units.nl_per_mcg(conc), over * 10)[0])
    check_total(prescription_top(th, concs) + worst, "%d mcg over %d s with the therapy" % (mcg, over))
