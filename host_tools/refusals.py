"""A pump's refusal, as its user reads it: one line in clinical words, and the JSON for scripts.

The device refuses in device units, with structure (docs/protocol.md, section 6): a refused field
comes as {field, value, min, max, unit}, a safety limit as {limit, override, retry_in_s, ...}.
The words come from the host's one table of fields (host_tools/fields.py); unknown keys are
passed on to --json in user units and never break the text.
"""

from __future__ import annotations

import re
from typing import Any

from host_tools import fields, render
from host_tools.fields import limit_label
from host_tools.errors import DeviceRefused
from host_tools.pump_facts import fact, ml
from host_tools.units import local_time

# what a field of each kind must be, for a value of the wrong type
EXPECTED = {"number": "a whole number", "mL": "a volume in mL", "duration": "a duration with its unit",
            "clock": "a local time HH:MM", "time": "a date and time with its zone", "offset": "a UTC offset +HH:MM"}
_SHAPE = ("code", "error", "text", "field", "value", "min", "max", "unit")  # what this module renders


def field_sentence(f: fields.Field, d: dict) -> str:
    """A refused field in the words of the option the user typed."""
    v, lo, hi = d.get("value"), d.get("min"), d.get("max")
    if v is None:
        return f"{f.option} is required"
    if f.kind == "characters" and d.get("unit") == "bytes":
        return (f"{f.option} is too long for the pump's event log: at most {hi} bytes of text (accented letters "
                f"and symbols take 2 to 4), got {v}")
    if f.kind == "characters":
        return f"{f.option} needs a reason of {lo}..{hi} characters (it is logged), got {v}"
    if f.kind != "choice" and (not isinstance(v, int) or isinstance(v, bool)):
        return f"{f.option} must be {EXPECTED.get(f.kind, 'a whole number')}{f' of {f.unit}' if f.kind == 'number' and f.unit else ''}, got {v!r}"
    if f.kind == "choice":
        text = str(d.get("text", ""))
        name = str(d.get("field"))
        if text.startswith(name):
            text = f.option + text[len(name):]
        return fields.words(text)
    shown = fields.value_text(f, v)
    conc = d.get("concentration")
    if isinstance(lo, int) and v < lo:
        at = f", the least the pump delivers at {conc} mcg/mL ({ml(fact('MIN_RATE_NL'))} mL/day)" if conc \
            else ", the least allowed"
        return f"{f.option} {shown} is less than {fields.value_text(f, lo)}{at}"
    if isinstance(hi, int) and v > hi:
        top = fields.value_text(f, hi)
        bound = (f"{top}, the most the pump delivers at {conc} mcg/mL ({ml(fact('MAX_RATE_NL'))} mL/day)" if conc
                 else f.largest.format(max=top))
        return f"{f.option} {shown} is more than {bound}"
    return fields.words(str(d.get("text", "")))


def text(cmd: str, e: DeviceRefused, may_override: bool) -> str:
    """The one line: what was refused and why, in user units; how to proceed where one can."""
    d = e.detail
    name = d.get("field")
    f = fields.field(cmd, name) if isinstance(name, str) else None
    if f is not None:
        return f"the pump refused: {field_sentence(f, d)}"
    limit, retry = d.get("limit"), e.retry_in_s
    if e.code == 13 and retry is not None:
        return f"authentication is locked after repeated failures: retry in {render.wait_text(retry)}"
    if limit in ("ptm_lockout", "ptm_daily_max") and retry is not None:
        what = "locked out" if limit == "ptm_lockout" else "daily maximum reached"
        return f"{what}: next patient bolus allowed in {render.wait_text(retry)}"
    if limit == "titration_window" and isinstance(d.get("window_start_s"), int):
        return f"the pump refused: {window_sentence(d)}"
    body = e.text
    if isinstance(limit, str):
        body = re.sub(r"also over: ([a-z_, ]+)",
                      lambda m: "also over " + ", ".join(limit_label(x.strip()) for x in m.group(1).split(",")), body)
        body = re.sub(r"possible in \d+ s\b", f"possible in {render.wait_text(retry)}", body) if retry else body
    line = f"the pump refused: {fields.words(body, cmd)}"
    if isinstance(limit, str) and d.get("override") is True and may_override:
        line += f'; {hint(limit)}'
    return line


def window_sentence(d: dict) -> str:
    """The titration guard over 24 h (limit titration_window), in mcg and the pump's local time."""
    off = d.get("utc_offset_min", 0)

    def mcg(key: str) -> str:
        return f"{d[key] / 10:.1f} mcg"

    retry = d.get("retry_at_s")
    when = (f"the same change would fit from {local_time(retry, off)}" if isinstance(retry, int)
            else "it does not fit within 24 h at the running therapy")
    return (f"titration limit over 24 h: from {local_time(d['window_start_s'], off)} to "
            f"{local_time(d['window_end_s'], off)} the patient would get "
            f"{(d['before_mcg_x10'] + d['new_mcg_x10']) / 10:.1f} mcg ({mcg('before_mcg_x10')} already given or "
            f"scheduled, {mcg('new_mcg_x10')} from the new program); any 24 h may hold at most "
            f"{mcg('allowance_mcg_x10')} (the lowest daily dose of the last 24 h plus the titration limit), so "
            f"{mcg('left_mcg_x10')} are left in that window; {when}")


def hint(limit: str) -> str:
    return f'rerun with --override "REASON" to proceed past {limit_label(limit)}'


def json_doc(cmd: str, e: DeviceRefused, may_override: bool) -> dict[str, Any]:
    """The refusal for --json: field names and values in user units (no device field names)."""
    d = e.detail
    out: dict[str, Any] = {"code": e.code, "name": d.get("error", e.name)}
    name = d.get("field")
    f = fields.field(cmd, name) if isinstance(name, str) else None
    if f is not None:
        out.update({"field": f.json, "option": f.option, "value": fields.value_json(f, d.get("value"))})
        for bound in ("min", "max"):
            if bound in d:
                out[bound] = fields.value_json(f, d[bound])
        out["unit"] = f.unit
    elif isinstance(name, str):
        out["field"] = name.replace("_", " ")
    extra = {k: v for k, v in d.items() if k not in _SHAPE}
    out.update(render.answer_json(extra))
    if isinstance(d.get("limit"), str) and d.get("override") is True and may_override:
        out["hint"] = hint(d["limit"])
    return out
