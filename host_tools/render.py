"""What the CLI prints: the status as a person reads it, and as JSON for scripts."""

from __future__ import annotations

from host_tools.units import device_time, nl_to_ml, offset_text


def status_json(raw: dict, port: str) -> dict:
    """The device's status in user units (spec §9 field names)."""
    return {
        "state": raw["state"],
        "mode": raw["mode"],
        "daily_dose_mcg": raw["daily_dose_mcg"],
        "rate_ml_per_day": nl_to_ml(raw["rate_nl_per_day"]),
        "concentration_mcg_per_ml": raw["concentration_mcg_per_ml"],
        "reservoir_ml": nl_to_ml(raw["reservoir_nl"]),
        "reservoir_capacity_ml": nl_to_ml(raw["reservoir_capacity_nl"]),
        "alarms": [
            {"code": a["code"], "priority": a["priority"], "since": device_time(a["since"]),
             "acknowledged": a["acknowledged"]}
            for a in raw["alarms"]
        ],
        "alarm_date": device_time(raw["alarm_date"]),
        "refill_date": device_time(raw["refill_date"]),
        "clock": device_time(raw["clock"]),
        "utc_offset": offset_text(raw["utc_offset_min"]),
        "firmware_version": raw["firmware_version"],
        "serial": raw["serial"],
        "port": port,
    }


def status_text(s: dict, board: str) -> str:
    def dash(v: object) -> str:
        return "-" if v is None else str(v)

    conc = s["concentration_mcg_per_ml"]
    lines = [
        f"Pump {s['serial']} ({board}, firmware {s['firmware_version']}) on {s['port']}",
        f"  state          {s['state']}",
        f"  mode           {s['mode']}",
        f"  daily dose     {s['daily_dose_mcg']} mcg/day ({s['rate_ml_per_day']:.6f} mL/day)",
        f"  concentration  {dash(conc)}{' mcg/mL' if conc else ''}",
        f"  reservoir      {s['reservoir_ml']:.6f} mL of {s['reservoir_capacity_ml']:g} mL",
        f"  alarm date     {dash(s['alarm_date'])}",
        f"  refill date    {dash(s['refill_date'])}",
        f"  clock          {s['clock']} (local = UTC{s['utc_offset']})",
    ]
    if not s["alarms"]:
        lines.append("  alarms         none")
    for i, a in enumerate(s["alarms"]):
        ack = "acknowledged" if a["acknowledged"] else "not acknowledged"
        label = "  alarms         " if i == 0 else "                 "
        lines.append(f"{label}{a['code']} ({a['priority'].replace('_', '-')}, since {a['since']}, {ack})")
    return "\n".join(lines)
