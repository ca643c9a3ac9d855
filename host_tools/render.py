"""What the CLI prints: the status as a person reads it, and as JSON for scripts."""

from __future__ import annotations

from typing import Any

from host_tools.durations import format_duration
from host_tools.units import clock_text, device_time, ml_text, nl_to_ml, offset_text

# keys ending in _s that are lengths of time, not device timestamps
DURATION_KEYS = frozenset({"over_s", "every_s", "interval_s", "lockout_s", "duration_s"})


def status_json(raw: dict, port: str) -> dict:
    """The device's status in user units (spec §9 field names)."""
    s = {
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
    if raw.get("therapy") is not None:
        s["therapy"] = answer_json(raw["therapy"])
    return s


def status_text(s: dict, board: str) -> str:
    def dash(v: object) -> str:
        return "-" if v is None else str(v)

    conc = s["concentration_mcg_per_ml"]
    lines = [
        f"Pump {s['serial']} ({board}, firmware {s['firmware_version']}) on {s['port']}",
        f"  state          {s['state']}",
        f"  mode           {s['mode']}",
        f"  daily dose     {s['daily_dose_mcg']} mcg/day",
        f"  rate now       {s['rate_ml_per_day']:.6f} mL/day",
        *_therapy_lines(s.get("therapy") or {}),
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


def _therapy_lines(t: dict) -> list[str]:
    """The optional `therapy` block of the status (already in user units), as status lines."""
    def ml(v: object) -> str:
        return "-" if v is None else f"{v:.6f}"

    def hhmm(v: object) -> str:
        return "-" if v is None else clock_text(v)  # type: ignore[arg-type]

    lines = []
    if (step := t.get("flex_step")) is not None:
        nxt = hhmm(step["next_start_min"]) if step.get("next_start_min") is not None else step.get("next_start")
        lines.append(f"  flex step      {step.get('dose_mcg', '-')} mcg/day since {hhmm(step.get('start_min'))}"
                     + (f", next step at {nxt}" if nxt is not None else ""))
    if t.get("next_bolus") is not None:
        lines.append(f"  next bolus     {t['next_bolus']}")
    if (b := t.get("bolus")) is not None:
        lines.append(f"  bolus          {b.get('dose_mcg', '-')} mcg ({ml(b.get('volume_ml'))} mL): "
                     f"{ml(b.get('delivered_ml'))} mL delivered, ends {b.get('ends') or '-'}")
    if (br := t.get("bridge")) is not None:
        old = br.get("old_concentration")
        lines.append(f"  bridge         {ml(br.get('pushed_ml'))} of {ml(br.get('dead_volume_ml'))} mL pushed "
                     f"at the old concentration{f' ({old} mcg/mL)' if old is not None else ''}")
    if (pr := t.get("priming")) is not None:
        lines.append(f"  priming        {ml(pr.get('pushed_ml'))} of {ml(pr.get('volume_ml'))} mL pushed")
    if t.get("strokes") is not None:
        lines.append(f"  strokes        {t['strokes']}")
    if t.get("delivered_ml") is not None:
        lines.append(f"  delivered      {ml(t['delivered_ml'])} mL")
    if t.get("primed_ml"):
        lines.append(f"  primed         {ml(t['primed_ml'])} mL")
    return lines


# -- answers to programming commands: generic, by the device's field-name units -----------------

def _is_timestamp(key: str) -> bool:
    return key.endswith("_s") and key not in DURATION_KEYS


def answer_json(raw: Any) -> Any:
    """A device answer in user units: *_nl -> *_ml (6 decimals), *_nl_per_* -> *_ml_per_*,
    timestamps *_s -> ISO 8601 UTC under the name without _s; durations (over_s, every_s, ...) and
    everything else unchanged."""
    if isinstance(raw, list):
        return [answer_json(v) for v in raw]
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    for key, v in raw.items():
        if key.endswith("_nl") and not isinstance(v, (dict, list)):
            out[key[:-3] + "_ml"] = nl_to_ml(v)
        elif "_nl_per_" in key and not isinstance(v, (dict, list)):
            out[key.replace("_nl_per_", "_ml_per_")] = nl_to_ml(v)
        elif _is_timestamp(key) and not isinstance(v, (dict, list)):
            out[key[:-2]] = device_time(v)
        else:
            out[key] = answer_json(v)
    return out


def _field_text(key: str, v: Any) -> tuple[str, str]:
    """(label, value) for one scalar field of a raw device answer."""
    if v is None:
        return key, "-"
    if isinstance(v, bool):
        return key, "yes" if v else "no"
    if not isinstance(v, int):
        return key, str(v)
    if key.endswith("_nl"):
        return key[:-3], f"{ml_text(v)} mL"
    if "_nl_per_" in key:
        head, unit = key.split("_nl_per_", 1)
        return head, f"{ml_text(v)} mL/{unit}"
    if key in DURATION_KEYS:
        return key[:-2], format_duration(v * 1000)
    if key.endswith("_s"):
        return key[:-2], str(device_time(v))
    if key == "utc_offset_min":
        return "utc_offset", offset_text(v)
    if key.endswith("_min") and 0 <= v < 24 * 60:
        return key[:-4], clock_text(v)
    return key, str(v)


def _answer_lines(raw: dict, indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for key, v in raw.items():
        if isinstance(v, dict):
            lines.append(f"{pad}{key}:")
            lines += _answer_lines(v, indent + 2)
        elif isinstance(v, list):
            if not v:
                lines.append(f"{pad}{key}: none")
            elif all(not isinstance(x, (dict, list)) for x in v):
                lines.append(f"{pad}{key}: {', '.join(str(x) for x in v)}")
            else:
                lines.append(f"{pad}{key}:")
                for x in v:
                    if isinstance(x, dict):
                        sub = _answer_lines(x, indent + 4)
                        lines.append(f"{pad}  - {sub[0].lstrip()}" if sub else f"{pad}  - {{}}")
                        lines += sub[1:]
                    else:
                        lines.append(f"{pad}  - {x}")
        else:
            label, text = _field_text(key, v)
            lines.append(f"{pad}{label}: {text}")
    return lines


def answer_text(title: str, raw: dict) -> str:
    """A title line, then the device's answer as 'key: value' lines in user units."""
    return "\n".join([title, *_answer_lines(raw, 2)])


def clock_json(raw: dict) -> dict:
    """The `clock` answer in user units: clock as ISO 8601 UTC, the offset as +HH:MM and in minutes."""
    out = answer_json({k: v for k, v in raw.items() if k not in ("clock", "utc_offset_min")})
    out["clock"] = device_time(raw.get("clock"))
    if raw.get("utc_offset_min") is not None:
        out["utc_offset"] = offset_text(raw["utc_offset_min"])
        out["utc_offset_min"] = raw["utc_offset_min"]
    out["schedule_shift"] = list(raw.get("schedule_shift") or [])
    return out


def clock_answer_text(raw: dict, title: str) -> str:
    """The `clock` answer for people: the clock, the offset and how the flex schedule moves in UTC."""
    c = clock_json(raw)
    offset = c.get("utc_offset")
    lines = [title, f"  clock          {c['clock'] or '-'}" + (f" (local = UTC{offset})" if offset else "")]
    if c["schedule_shift"]:
        lines.append("  schedule shift")
        lines += [f"    {line}" for line in c["schedule_shift"]]
    else:
        lines.append("  schedule shift none")
    extra = {k: v for k, v in raw.items() if k not in ("clock", "utc_offset_min", "schedule_shift")}
    return "\n".join(lines + _answer_lines(extra, 2))


# -- the event log (`log`) ---------------------------------------------------------------------

def log_json(raw: dict) -> dict:
    """The `log` answer (client.log) for scripts: entries oldest first, times as ISO 8601 UTC."""
    return {
        "entries": [{"seq": e["seq"], "time": device_time(e["time"]), "event": e["event"], "text": e["text"]}
                    for e in raw["entries"]],
        "bad": raw.get("bad", 0),
        "capacity": raw.get("capacity"),
    }


def log_text(raw: dict) -> str:
    """One line per entry, oldest first: ISO time, event, text; then damaged entries, if any."""
    width = max((len(e["event"]) for e in raw["entries"]), default=0)
    lines = [f"{device_time(e['time'])}  {e['event']:<{width}}  {e['text']}".rstrip() for e in raw["entries"]]
    if not lines:
        lines.append("event log: no entries")
    if raw.get("bad"):
        lines.append(f"({raw['bad']} damaged entr{'y' if raw['bad'] == 1 else 'ies'} skipped: CRC check failed)")
    return "\n".join(lines)


# -- alarms (`alarms [--ack]`, `alarm-test`) ----------------------------------------------------

def alarms_json(raw: dict) -> dict:
    """The `alarms` answer for scripts: the status's alarm list (since as ISO 8601 UTC), and the
    codes this request acknowledged."""
    return {
        "alarms": [{"code": a["code"], "priority": a["priority"], "since": device_time(a["since"]),
                    "acknowledged": a["acknowledged"]} for a in raw["alarms"]],
        "acknowledged": list(raw.get("acknowledged") or []),
    }


def alarms_text(a: dict) -> str:
    """One line per active alarm, critical first; then what --ack silenced."""
    if not a["alarms"]:
        lines = ["alarms: none"]
    else:
        lines = [f"alarms: {len(a['alarms'])} active"]
        for x in a["alarms"]:
            state = "acknowledged (silent)" if x["acknowledged"] else "sounding"
            lines.append(f"  {x['code']:<18} {x['priority'].replace('_', '-'):<12}  since {x['since']}  {state}")
    if a["acknowledged"]:
        lines.append(f"acknowledged now: {', '.join(a['acknowledged'])} (they stay listed until they clear)")
    return "\n".join(lines)


def alarm_test_text(raw: dict) -> str:
    kinds = " then ".join(k.replace("_", "-") for k in raw.get("playing", []))
    return f"alarm test: the pump plays the {kinds} tones once ({raw.get('duration_ms', 0) / 1000:g} s)"
