"""When the reservoir reaches a level: the alarm and refill dates of status and of a review."""


def volume_x1440(dev):
    """nL/day x 1440 the pump takes from the reservoir now: the prescription's average, or the
    rate delivered now in minimum rate and halt; 0 when nothing is delivered."""
    th = dev.therapy
    if th.halted or th.minimum:
        return th.d.rate * 1440
    if th.mode == "stopped" or not th.conc:
        return 0
    return th.daily_x1440 * (1000000 // th.conc)


def reaches(dev, level_nl, per_day=None, reservoir_nl=None):
    """Device time the reservoir (default: now's) reaches level_nl at per_day nL/day x 1440
    (default: volume_x1440), now if it has; None when nothing is delivered."""
    th = dev.therapy
    if per_day is None:
        per_day = volume_x1440(dev)
    if per_day <= 0:
        return None
    left = (th.reservoir_nl if reservoir_nl is None else reservoir_nl) - level_nl
    return th.now_s() + (left * 124416000 // per_day if left > 0 else 0)  # 86400 s x 1440
