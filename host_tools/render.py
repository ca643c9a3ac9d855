"""What the CLI prints: the status as a person reads it, and as JSON for scripts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from host_tools import alarm_words, log_events, review_detail
from host_tools.durations import duration_text, format_duration
from host_tools.fields import field, limit_label, words
from host_tools.pump_facts import fact
from host_tools.units import (clock_text, device_time, local_time, ml_exact, ml_show, ml_text, nl_to_ml,
                              offset_minutes, offset_text, rate_show)

# a state as a person reads it (an alarm's words: alarm_words.CATALOGUE)
STATE_WORDS = {"minimum_rate": "minimum rate", "alarm_critical": "halted by a critical alarm"}
BOARD_WORDS = {"virtual-pico": "virtual Pico", "rp2": "Pico"}


def code_words(code: str) -> str:
    """A code of the pump (an alarm, a state, a role, a limit) as a person reads it."""
    if code in alarm_words.CATALOGUE:
        return alarm_words.label(code)
    return STATE_WORDS.get(code, code.replace("_", " "))

# keys ending in _s that are lengths of time, not device timestamps
DURATION_KEYS = frozenset({"over_s", "every_s", "interval_s", "lockout_s", "duration_s", "retry_in_s", "expires_s",
                           "bridge_s"})


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
        "alarms": [alarm_json(a) for a in raw["alarms"]],
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
    """The status as a clinician programmer shows it: mL to 2 decimals, rates to 3, dates in the
    pump's local time (its offset shown once, on the clock line), words for states and alarms."""
    def dash(v: object) -> str:
        return "-" if v is None else str(v)

    off = offset_minutes(s["utc_offset"])
    conc = s["concentration_mcg_per_ml"]
    ml = lambda v: ml_show(round(v * 1_000_000))  # noqa: E731
    lines = [
        f"Pump {s['serial']} ({BOARD_WORDS.get(board, board)}, firmware {s['firmware_version']}) on {s['port']}",
        f"  state          {_state_text(s)}",
        f"  mode           {s['mode']}",
        f"  daily dose     {s['daily_dose_mcg']} mcg/day",
        f"  rate now       {rate_show(round(s['rate_ml_per_day'] * 1_000_000))} mL/day",
        *_therapy_lines(_delivering(s), off),
        f"  concentration  {dash(conc)}{' mcg/mL' if conc else ''}",
        f"  reservoir      {ml(s['reservoir_ml'])} mL of {s['reservoir_capacity_ml']:g} mL",
        f"  alarm date     {local_time(s['alarm_date'], off)}",
        f"  refill date    {local_time(s['refill_date'], off)}",
        f"  clock          {local_time(s['clock'], off)} local time (UTC{s['utc_offset']})",
    ]
    if not s["alarms"]:
        lines.append("  alarms         none")
    for i, a in enumerate(s["alarms"]):
        ack = "acknowledged" if a["acknowledged"] else "not acknowledged"
        label = "  alarms         " if i == 0 else "                 "
        lines.append(f"{label}{alarm_words.label(a['code'])} ({alarm_words.priority_words(a['priority'])}, since "
                     f"{local_time(a['since'], off)}, {ack})")
        lines += [f"                   {line}" for line in alarm_says(a, s, off)]
    return "\n".join(lines)


def _state_text(s: dict) -> str:
    """The state; at the minimum rate, why (the alarm that put it there)."""
    if s["state"] != "minimum_rate":
        return code_words(s["state"])
    why = [alarm_words.label(a["code"]) for a in s["alarms"] if a["code"] in alarm_words.MINIMUM_RATE_CAUSES]
    return f"minimum rate (keeps the catheter open{': ' + ', '.join(why) if why else ''}; the programmed therapy is suspended)"


def _delivering(s: dict) -> dict:
    """The therapy detail of what is delivered now: at the minimum rate no flex step or periodic
    bolus runs, whatever the prescription says."""
    t = dict(s.get("therapy") or {})
    if s["state"] == "minimum_rate":
        t.pop("flex_step", None)
        t.pop("next_bolus", None)
    return t


def _therapy_lines(t: dict, off: int = 0) -> list[str]:
    """The optional `therapy` block of the status (already in user units), as status lines."""
    def ml(v: object) -> str:
        return "-" if v is None else ml_show(round(v * 1_000_000))  # type: ignore[operator]

    def hhmm(v: object) -> str:
        return "-" if v is None else clock_text(v)  # type: ignore[arg-type]

    def when(v: object) -> str:
        return local_time(v, off)[-5:] if isinstance(v, str) else "-"  # type: ignore[arg-type]

    lines = []
    if (step := t.get("flex_step")) is not None:
        nxt = (hhmm(step["next_start_min"]) if step.get("next_start_min") is not None
               else when(step.get("next_start")) if step.get("next_start") else None)
        lines.append(f"  flex step      {step.get('dose_mcg', '-')} mcg/day since {hhmm(step.get('start_min'))}"
                     + (f", next step at {nxt}" if nxt is not None else ""))
    if t.get("next_bolus") is not None:
        lines.append(f"  next bolus     {local_time(t['next_bolus'], off)}")
    if (b := t.get("bolus")) is not None:
        lines.append(f"  bolus          {b.get('dose_mcg', '-')} mcg ({ml(b.get('volume_ml'))} mL): "
                     f"{ml(b.get('delivered_ml'))} mL delivered, ends {local_time(b.get('ends'), off)}")
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
    """A device answer in user units: *_nl -> *_ml (6 decimals), *_nl_per_* -> *_ml_per_*, *_mcg_x10 -> *_mcg,
    timestamps *_s -> ISO 8601 UTC under the name without _s, utc_offset_min -> utc_offset (+HH:MM);
    durations (over_s, every_s, ...) and everything else unchanged."""
    if isinstance(raw, list):
        return [answer_json(v) for v in raw]
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    for key, v in raw.items():
        if key == "utc_offset_min" and isinstance(v, int):
            out["utc_offset"] = offset_text(v)
        elif key.endswith("_nl") and not isinstance(v, (dict, list)):
            out[key[:-3] + "_ml"] = nl_to_ml(v)
        elif "_nl_per_" in key and not isinstance(v, (dict, list)):
            out[key.replace("_nl_per_", "_ml_per_")] = nl_to_ml(v)
        elif key.endswith("_mcg_x10") and isinstance(v, int):  # tenths of a mcg (a limit's numbers)
            out[key[:-4]] = v / 10
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
        return key[:-3], f"{ml_exact(v)} mL"
    if "_nl_per_" in key:
        head, unit = key.split("_nl_per_", 1)
        return head, f"{rate_show(v)} mL/{unit}"
    if key in DURATION_KEYS:
        return key[:-2], duration_text(v)
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
    off = raw.get("utc_offset_min") or 0
    lines = [title, f"  clock          {local_time(raw.get('clock'), off)} local time"
             + (f" (UTC{offset})" if offset else "")]
    if c["schedule_shift"]:
        lines.append("  schedule shift")
        lines += [f"    {line}" for line in c["schedule_shift"]]
    else:
        lines.append("  schedule shift none")
    extra = {k: v for k, v in raw.items() if k not in ("clock", "utc_offset_min", "schedule_shift")}
    return "\n".join(lines + _answer_lines(extra, 2))


# -- the event log (`log`) ---------------------------------------------------------------------

def log_json(raw: dict) -> dict:
    """The `log` answer (client.log) for scripts: entries oldest first, times as ISO 8601 UTC,
    each entry's sentence and its values in user units (log_events.EVENTS names them)."""
    off = raw.get("utc_offset_min") or 0
    return {
        "entries": [{"seq": e["seq"], "time": device_time(e["time"]), "event": e["event"],
                     "text": log_events.sentence(e, off), **log_events.fields(e)} for e in raw["entries"]],
        "bad": raw.get("bad", 0),
        "capacity": raw.get("capacity"),
        "utc_offset": offset_text(off),
    }


def log_text(raw: dict) -> str:
    """One line per entry, oldest first: local time, event, its sentence; then damaged entries."""
    off = raw.get("utc_offset_min") or 0
    names = [log_events.label(e) for e in raw["entries"]]
    width = max((len(n) for n in names), default=0)
    lines = [f"{local_time(e['time'], off)}  {n:<{width}}  {log_events.sentence(e, off)}".rstrip()
             for e, n in zip(raw["entries"], names)]
    if not lines:
        lines.append("event log: no entries")
    else:
        lines.insert(0, f"event log, times in the pump's local time (UTC{offset_text(off)})")
    if raw.get("bad"):
        lines.append(f"({raw['bad']} damaged entr{'y' if raw['bad'] == 1 else 'ies'} skipped: CRC check failed)")
    return "\n".join(lines)


# -- alarms (`alarms [--ack]`, `alarm-test`) ----------------------------------------------------

def alarms_json(raw: dict) -> dict:
    """The `alarms` answer for scripts: the status's alarm list (since as ISO 8601 UTC), and the
    codes this request acknowledged, and the pump's UTC offset (+HH:MM) when it says it."""
    out = {"alarms": [alarm_json(a) for a in raw["alarms"]], "acknowledged": list(raw.get("acknowledged") or [])}
    if raw.get("utc_offset_min") is not None:
        out["utc_offset"] = offset_text(raw["utc_offset_min"])
    return out


def alarm_json(a: dict) -> dict:
    """One active alarm for scripts: since as ISO 8601 UTC, and what else the pump says of it
    (restarts_failed for a motor stall)."""
    return {**answer_json({k: v for k, v in a.items() if k != "since"}), "since": device_time(a["since"])}


def alarm_numbers(a: dict, s: dict | None, off: int) -> str:
    """What the numbers say of an alarm (a: as in alarm_json; s: the status, when known)."""
    code = a["code"]
    since = datetime.fromisoformat(a["since"].replace("Z", "+00:00"))
    if code in ("low_reservoir", "empty_reservoir") and s:
        return (f"{ml_show(round(s['reservoir_ml'] * 1_000_000))} mL left; the reservoir reaches its empty level "
                f"(the refill-by date) {local_time(s['refill_date'], off)}")
    if code == "motor_stall":
        text = f"{a.get('restarts_failed', 0)} restart attempts failed so far"
        if s and s.get("concentration_mcg_per_ml") and s.get("clock"):
            days = (datetime.fromisoformat(s["clock"].replace("Z", "+00:00")) - since) / timedelta(days=1)
            missed = days * s["daily_dose_mcg"] / s["concentration_mcg_per_ml"]
            text += f"; about {missed:.2f} mL ({days * s['daily_dose_mcg']:.0f} mcg) not delivered since {local_time(a['since'], off)}"
        return text
    if code == "battery_eri":
        eos = since + timedelta(days=alarm_words.EOS_AFTER_DAYS)
        text = f"end of service about {local_time(eos.strftime('%Y-%m-%dT%H:%M:%SZ'), off)}"
        if s and s.get("clock"):
            left = (eos - datetime.fromisoformat(s["clock"].replace("Z", "+00:00"))) / timedelta(days=1)
            text += f", in {max(0, int(left))} days"
        return text
    return ""


def alarm_says(a: dict, s: dict | None, off: int) -> list[str]:
    """What an alarm means and what to do, then its numbers (lines under the alarm's own)."""
    said = alarm_words.advice(a["code"])
    advice = [said] if said else []
    numbers = alarm_numbers(a, s, off)
    return advice + ([numbers] if numbers else [])


def alarms_text(a: dict) -> str:
    """One line per active alarm, critical first, with what to do; then what --ack silenced. Times
    in the pump's local time (a pump too old to say its offset: in UTC, and the header says so)."""
    off = offset_minutes(a["utc_offset"]) if a.get("utc_offset") else 0
    zone = "" if a.get("utc_offset") else " (times in UTC)"
    if not a["alarms"]:
        lines = ["alarms: none"]
    else:
        lines = [f"alarms: {len(a['alarms'])} active{zone}"]
        for x in a["alarms"]:
            state = "acknowledged (silent)" if x["acknowledged"] else "sounding"
            lines.append(f"  {alarm_words.label(x['code']):<18} {alarm_words.priority_words(x['priority']):<12}  since "
                         f"{local_time(x['since'], off)}  {state}")
            lines += [f"    {line}" for line in alarm_says(x, None, off)]
    if a["acknowledged"]:
        lines.append(f"acknowledged now: {', '.join(alarm_words.label(c) for c in a['acknowledged'])} "
                     f"(they stay listed until they clear)")
    return "\n".join(lines)


def alarm_test_text(raw: dict) -> str:
    kinds = " then ".join(alarm_words.priority_words(k) for k in raw.get("playing", []))
    return f"alarm test: the pump plays the {kinds} tones once ({raw.get('duration_ms', 0) / 1000:g} s)"


# -- two-phase programming: the device's review of a prepared change (spec §4, §9) ---------------

# the rows every side of a review carries, in order: key -> label
REVIEW_ROWS = (("mode", "mode"), ("daily_dose_mcg", "daily dose"), ("rate_nl_per_day", "rate"),
               ("alarm_date", "alarm date"), ("refill_date", "refill date"))
_REVIEW_DATES = ("alarm_date", "refill_date")


def change_pct_text(tenths: int | None, reference_min: int | None = None) -> str:
    """change_tenths_pct -> '+25.0 %', '-20.0 %', '0.0 %'; None -> why there is no percentage."""
    if tenths is None:
        return "no dose in the last 24 h" if reference_min is None else "-"
    sign = "+" if tenths > 0 else "-" if tenths < 0 else ""
    whole, frac = divmod(abs(tenths), 10)
    return f"{sign}{whole}.{frac} %"


def _review_side_json(side: dict | None) -> dict:
    side = dict(side or {})
    dates = {k: device_time(side.pop(k)) for k in _REVIEW_DATES if k in side}
    out = answer_json(side)
    out.update(dates)
    return out


def review_json(raw: dict) -> dict:
    """A review in user units: rates and volumes in mL (6 decimals), dates ISO 8601 UTC, the change
    also as a percentage (change_pct); the token and its lifetime (expires_s, seconds) as given."""
    ref = raw.get("reference") or {}
    tenths = raw.get("change_tenths_pct")
    out = {
        "cmd": raw.get("cmd"),
        "serial": raw.get("serial"),
        "summary": raw.get("summary"),
        "token": raw.get("token"),
        "expires_s": raw.get("expires_s"),
        "current": _review_side_json(raw.get("current")),
        "new": _review_side_json(raw.get("new")),
        "reference": {"min_mcg": ref.get("min_mcg"), "max_mcg": ref.get("max_mcg")},
        "change_tenths_pct": tenths,
        "change_pct": None if tenths is None else tenths / 10,
        "warnings": list(raw.get("warnings") or []),
        "overrides": list(raw.get("overrides") or []),
    }
    if raw.get("utc_offset_min") is not None:
        out["utc_offset"] = offset_text(raw["utc_offset_min"])
    known = set(out) | {"review", "utc_offset_min"}
    out.update({k: answer_json(v) for k, v in raw.items() if k not in known})
    return out


def _side_value(key: str, v: Any, off: int = 0) -> str:
    if v is None:
        return "-"
    if key == "daily_dose_mcg":
        return f"{v} mcg/day"
    if key == "rate_nl_per_day":
        return f"{rate_show(v)} mL/day"
    if key in _REVIEW_DATES:
        return local_time(v, off)
    if isinstance(v, int) and not isinstance(v, bool):
        for suffix, unit in (("_mcg_per_ml", "mcg/mL"), ("_mcg", "mcg")):
            if key.endswith(suffix):
                return f"{v} {unit}"
    return _field_text(key, v)[1]


def review_text(raw: dict, req: dict | None = None) -> str:
    """The review as a clinician reads it: current and new side by side, the change itself
    (review_detail: bolus, refill, flex steps; req is the request sent), the change against the
    lowest daily dose of the last 24 h, the warnings, the overrides the commit would use, and
    the pump's serial."""
    cur, new = raw.get("current") or {}, raw.get("new") or {}
    off = raw.get("utc_offset_min") or 0
    rows = [(label, _side_value(k, cur.get(k), off), _side_value(k, new.get(k), off)) for k, label in REVIEW_ROWS]
    shown = {k for k, _ in REVIEW_ROWS}
    for k in [*cur, *(k for k in new if k not in cur)]:  # extra keys, e.g. reservoir_nl
        c, n = cur.get(k), new.get(k)
        if k in shown or isinstance(c, (dict, list)) or isinstance(n, (dict, list)):
            continue
        label = _field_text(k, 0 if isinstance(c if c is not None else n, int) else "")[0]
        for suffix in ("_mcg_per_ml", "_mcg"):
            label = label[:-len(suffix)] if label.endswith(suffix) else label
        rows.append((label.replace("_", " "), _side_value(k, c, off), _side_value(k, n, off)))
    detail, host_warnings = review_detail.rows(raw, req, off)
    lw = max(len(r[0]) for r in rows + [("refill date", "", ""), *((d[0], "", "") for d in detail)]) + 2
    cw = max(len(r[1]) for r in rows + [("", "current", "")]) + 3
    lines = [f"Review: {words(str(raw.get('summary') or raw.get('cmd', '')), str(raw.get('cmd', '')))}",
             f"  {'':<{lw}}{'current':<{cw}}new"]
    lines += [f"  {label:<{lw}}{c:<{cw}}{n}".rstrip() for label, c, n in rows]
    lines += [f"  {label:<{lw}}{text}" for label, text in detail]
    ref = raw.get("reference") or {}
    change = change_pct_text(raw.get("change_tenths_pct"), ref.get("min_mcg"))
    if raw.get("change_tenths_pct") is not None and ref.get("min_mcg") is not None:
        change += f" against {ref['min_mcg']} mcg/day, the lowest daily dose in the last 24 h"
    lines.append(f"  {'change':<{lw}}{change}")
    warnings = list(raw.get("warnings") or []) + host_warnings
    overrides = list(raw.get("overrides") or [])
    lines.append(f"  {'warnings':<{lw}}{warnings[0] if warnings else 'none'}")
    lines += [f"  {'':<{lw}}{w}" for w in warnings[1:]]
    over = [f"{o.get('limit', '?')}: {o.get('text', '')}" for o in overrides]
    lines.append(f"  {'overrides':<{lw}}{over[0] if over else 'none'}")
    lines += [f"  {'':<{lw}}{o}" for o in over[1:]]
    if raw.get("serial"):  # which pump this applies to (a clinic may have several on the bench)
        lines.append(f"  {'pump':<{lw}}{raw['serial']}")
    if raw.get("expires_s") is not None:
        lines.append(f"  (dates in the pump's local time, UTC{offset_text(off)}; this review holds for "
                     f"{duration_text(raw['expires_s'])} of pump time)")
    return "\n".join(lines)


_SUMMARY_KEYS = {"state", "mode", "daily_dose_mcg", "rate_nl_per_day", "concentration_mcg_per_ml",
                 "overrides", "warnings"}


def _summary_lines(raw: dict, skip: set[str]) -> list[str]:
    """The pump's therapy summary after a change (state, mode, daily dose, rate now,
    concentration, overrides logged, warnings), then any other keys in user units."""
    def dash(v: object, unit: str = "") -> str:
        return "-" if v is None else f"{v}{unit}"

    rate = raw.get("rate_nl_per_day")
    over = [f"{o.get('limit', '?')} (logged with the reason)" if isinstance(o, dict) else str(o)
            for o in raw.get("overrides") or []]
    warnings = list(raw.get("warnings") or [])
    state = raw.get("state")
    lines = [f"  state          {'-' if state is None else code_words(state)}",
             f"  mode           {dash(raw.get('mode'))}",
             f"  daily dose     {dash(raw.get('daily_dose_mcg'), ' mcg/day')}",
             f"  rate now       {'-' if rate is None else rate_show(rate) + ' mL/day'}",
             f"  concentration  {dash(raw.get('concentration_mcg_per_ml'), ' mcg/mL')}"]
    if "overrides" in raw:
        lines += [f"  overrides      {over[0] if over else 'none'}", *[f"                 {o}" for o in over[1:]]]
    if "warnings" in raw:
        lines += [f"  warnings       {warnings[0] if warnings else 'none'}",
                  *[f"                 {w}" for w in warnings[1:]]]
    return lines + _answer_lines({k: v for k, v in raw.items() if k not in _SUMMARY_KEYS | skip}, 2)


def committed_text(raw: dict) -> str:
    """The commit's answer: what was applied, then the pump's therapy now."""
    return "\n".join([f"applied: {raw.get('committed') or 'the change'}",
                      *_summary_lines(raw, {"committed", "review"})])


# -- limits, patient bolus (PTM) -----------------------------------------------------------------

def wait_text(seconds: int | None) -> str:
    """Seconds until something is allowed, as a person says it: '1h 12m', '12m', '45s' (minutes
    rounded up, so the time given is never too early)."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    minutes = -(-s // 60)
    h, m = divmod(minutes, 60)
    d, h = divmod(h, 24)
    parts = [f"{d}d"] if d else []
    parts += [f"{h}h"] if h else []
    parts += [f"{m}m"] if m else []
    return " ".join(parts)


def limits_text(raw: dict, setting: bool = False) -> str:
    """The limits; `setting`: the answer to a change, which also says what changed."""
    def v(key: str, unit: str = "") -> str:
        x = raw.get(key)
        return "-" if x is None else f"{x}{unit}"

    lo_hi = raw.get("titration_range") or []
    rng = f" (the {raw.get('profile')} profile allows {lo_hi[0]}..{lo_hi[1]} %)" if len(lo_hi) == 2 else ""
    low = raw.get("low_reservoir_nl")
    ref = raw.get("reference") or {}
    if ref.get("min_mcg") is None and ref.get("max_mcg") is None:
        ref_text = "no dose in the last 24 h (the initial cap applies)"
    else:
        ref_text = f"lowest {ref.get('min_mcg')} mcg/day, highest {ref.get('max_mcg')} mcg/day"
    lines = [
        f"Safety limits (patient profile: {v('profile')})",
        f"  titration      {v('titration_pct', ' %')} over the lowest daily dose of the last 24 h{rng}",
        f"  initial cap    {v('initial_cap_mcg', ' mcg/day')} when there was no dose in the last 24 h "
        f"(more only with --override)",
        f"  decrease       more than {v('decrease_pct', ' %')} in 24 h only with --override",
        f"  high dose      increases over {fact('HIGH_STEP_PCT')} % warn at {v('high_dose_mcg', ' mcg/day')} or more",
        f"  ceiling        {v('ceiling_mcg', ' mcg/day')} (more only with --override)",
        f"  hard maximum   {v('hard_max_mcg', ' mcg/day')} (never exceeded)",
        f"  bolus cap      {v('bolus_cap_mcg', ' mcg')} for a clinician single bolus",
        f"  low reservoir  {'-' if low is None else ml_exact(low) + ' mL'} (alarm threshold)",
        f"  last 24 h      {ref_text}",
    ]
    if setting:
        changed = [_limit_option(c) for c in raw.get("changed") or []]
        lines.append(f"changed: {', '.join(changed) or 'nothing'}")
    for w in raw.get("warnings") or []:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _limit_option(name: str) -> str:
    """A limit the pump says it changed, as the option that sets it."""
    for suffix in ("", "_pct", "_nl", "_mcg", "_cap_mcg"):  # the answer names a limit without its unit
        f = field("limits", name + suffix)
        if f:
            return f.option
    return name.replace("_", " ")


def ptm_text(raw: dict) -> str:
    if not raw.get("enabled"):
        return "patient bolus (PTM): disabled"
    nxt = raw.get("next_allowed_s")
    return "\n".join([
        "patient bolus (PTM): enabled",
        f"  dose           {raw.get('dose_mcg')} mcg over {duration_text(raw.get('over_s') or 0)}",
        f"  max per day    {raw.get('max_per_day')}",
        f"  lockout        {duration_text(raw.get('lockout_s') or 0)}",
        f"  used (24 h)    {raw.get('used_24h')}",
        f"  next allowed   {'now' if nxt is None else local_time(nxt, raw.get('utc_offset_min') or 0)}",
    ])


def patient_bolus_text(raw: dict) -> str:
    b = raw.get("bolus") or {}
    return "\n".join([f"patient bolus started: {b.get('dose_mcg', '-')} mcg over "
                      f"{duration_text(b.get('over_s') or 0)}", *_summary_lines(raw, {"bolus"})])


_KEYS_TEXT = {"new": "new role keys provisioned (clinician, patient, service), filed in the host key file",
              "keep": "kept (this host holds them)",
              "replace": "replaced with new keys (--new-keys), filed in the host key file"}


def flash_text(r: dict) -> str:
    """What itbpump flash did (or, with --dry-run, would do)."""
    head = "Dry run: nothing written" if r.get("dry_run") else f"Flashed {r.get('serial')} on {r.get('port')}"
    if r.get("target") == "fixture":
        return "\n".join([head, f"  firmware  {r['files']} files, {r['bytes']} bytes of the HIL fixture board "
                                 "(hil/fixture/, mpy-cross build, main.py as source)",
                           *([f"  removed   {', '.join(r['remove'])}"] if r.get("remove") else []),
                           "  checked   the fixture answers hello" if r.get("verified") else
                           "  steps     " + "\n            ".join("mpremote connect PORT " + " ".join(s) for s in r["steps"])])
    lines = [head, f"  firmware  {r['files']} files, {r['bytes']} bytes (mpy-cross build, main.py as source)",
             f"  keys      {_KEYS_TEXT.get(r.get('keys', ''), r.get('keys'))}"]
    if r.get("remove"):
        lines.append(f"  removed   {', '.join(r['remove'])} (old code the new build does not have)")
    if r.get("dry_run"):
        lines.append("  steps     " + "\n            ".join("mpremote connect PORT " + " ".join(s) for s in r["steps"]))
    elif r.get("jumper"):
        lines.append("  next      remove the maintenance jumper (GP22) and power-cycle the board to start the firmware")
    else:
        lines.append("  checked   the firmware answers with its serial and accepts the clinician key")
    return "\n".join(lines)
