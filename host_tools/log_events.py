"""The event log in a clinician's words: one table from each event code the firmware logs to its
sentence and to its fields for scripts.

A record (firmware/storage/event_log.py, docs/protocol.md `log`) is an event code, integers in device units
(`n`), codes (`codes`: an alarm, limit, mode, state, role or request) and, for an override or a
stop, the reason (`text`). EVENTS names each integer and its unit once: the sentence and the
JSON fields are both built from those names.
"""

from __future__ import annotations

from typing import Callable

from host_tools.durations import duration_text
from host_tools.fields import limit_label
from host_tools.pump_facts import fact, ml as ml_fact
from host_tools.units import local_time, ml_show, nl_to_ml, offset_text, device_time

# the pump's reset causes (firmware/hal/__init__.py RESET_*)
RESET_CAUSES = {0: "power loss", 1: "watchdog restart", 2: "restart"}
RESET_CODES = {0: "power", 1: "watchdog", 2: "soft"}  # the same for scripts (--json "cause")
MODE_WORDS = {"stopped": "stopped", "continuous": "continuous", "flex": "flex", "periodic": "periodic"}
# each unit of a record's integers: the suffix of its JSON name and its value for scripts
UNITS: dict[str, tuple[str, Callable[[int], object]]] = {
    "nl": ("_ml", lambda v: None if v < 0 else nl_to_ml(v)),
    "x1440": ("_mcg_per_day", lambda x: None if x < 0 else round(x / 1440, 3)),
    "mcg": ("_mcg", lambda v: v),
    "conc": ("_mcg_per_ml", lambda v: v or None),
    "time": ("", device_time),
    "dur": ("_s", lambda v: v),
    "offset": ("", offset_text),
    "mv": ("_v", lambda v: round(v / 1000, 3)),
    "n": ("", lambda v: v),
    "pct": ("_pct", lambda v: v),
    "flag": ("", bool),
    "cause": ("", lambda v: RESET_CODES.get(v, str(v))),
}


class Rec:
    """One entry's values by name (device units), its codes, reason and the pump's offset."""

    def __init__(self, names: tuple[str, ...], e: dict, off: int):
        n = list(e.get("n") or [])
        self.v = dict(zip((x.split(":")[0] for x in names), n + [0] * (len(names) - len(n))))
        self.codes = list(e.get("codes") or [])
        self.reason = e.get("text") or ""
        self.off = off

    def __getitem__(self, key: str) -> int:
        return self.v[key]

    def code(self, i: int, default: str = "") -> str:
        return self.codes[i] if i < len(self.codes) else default


def ml(nl: int) -> str:
    return f"{ml_show(nl)} mL"


def dose(x: int) -> str:
    """mcg/day x 1440 -> '312.5 mcg/day' (whole, or to one decimal, as the pump shows it)."""
    return f"{x // 1440 if x % 1440 == 0 else round(x / 1440, 1)} mcg/day"


def words(code: str) -> str:
    from host_tools.render import code_words

    return code_words(code)


def _therapy(mode: str, x: int) -> str:
    return "stopped" if mode == "stopped" else f"{MODE_WORDS.get(mode, words(mode))} {dose(x)}"


def _program(r: Rec) -> str:
    old, new = r.code(0, "stopped"), r.code(1, "stopped")
    if new == "stopped":
        return f"therapy stopped (was {_therapy(old, r['old'])}); reason: {r.reason}"
    return f"therapy changed from {_therapy(old, r['old'])} to {_therapy(new, r['new'])} (daily dose)"


def _override(r: Rec) -> str:
    at = "a stop" if r["new"] < 0 else dose(r["new"])
    return f"{' and '.join(limit_label(c) for c in r.codes)} at {at}; reason: {r.reason}"


def _refill(r: Rec) -> str:
    head = f"removed {ml(r['removed'])}"
    if r["expected"] >= 0:
        head += f" (expected {ml(r['expected'])}"
        head += ": possible pocket fill, catheter or pump problem)" if r["warned"] else ")"
    text = f"{head}, added {ml(r['added'])} of {r['concentration']} mcg/mL"
    if r["old_concentration"] and r["old_concentration"] != r["concentration"]:
        text += f" (was {r['old_concentration']} mcg/mL: the drug in the catheter goes first, at the old rate)"
    return text


def _alarm(r: Rec, cleared: bool) -> str:
    code = r.code(0)
    name = words(code)
    if r.code(1) == "acknowledged":
        return f"{name} cleared when acknowledged (the event was seen)"
    v = r["value"]
    if code in ("low_reservoir", "empty_reservoir"):
        return f"{name}{' cleared' if cleared else ''}: {ml(v)} in the reservoir"
    if code == "motor_stall":
        if cleared:
            return f"{name} cleared: strokes resumed after {v} failed restart{'s' * (v != 1)}"
        return f"{name} at stroke {v}: delivery halted, the pump retries every {fact('TICK_MS') // 60_000} min"
    if code.startswith("battery"):
        return f"{name}{' cleared' if cleared else ''}: battery at {v / 1000:.2f} V"
    return f"{name}{' cleared' if cleared else ''}"


def _auth_fail(r: Rec) -> str:
    kind, who = r.code(0), words(r.code(1))
    if kind == "wrong_response":
        return f"wrong response for the {who} key ({r['count']} in a row)"
    if kind == "bad_signature":
        return f"a {who} request with a bad signature (wrong session key or altered request)"
    return f"a replayed {who} request (counter {r['count'] if r['count'] >= 0 else 'missing'})"


def _limits(r: Rec) -> str:
    key = r.code(0)
    if key == "profile":
        return f"titration profile {r.code(1)} -> {r.code(2)}"
    if key == "low_reservoir":
        return f"low-reservoir alarm threshold {ml(r['old'])} -> {ml(r['new'])}"
    unit = " % per 24 h" if key == "titration" else " mcg" if key == "bolus_cap" else " mcg/day"
    return f"{limit_label(LIMIT_KEYS.get(key, key))} {r['old']}{unit} -> {r['new']}{unit}"


LIMIT_KEYS = {"initial": "initial_cap"}  # a setting's key (firmware limits.defaults) -> its limit's name


def _ptm(r: Rec) -> str:
    def side(p: str) -> str:
        if not r[p + "dose"]:
            return "off"
        return (f"{r[p + 'dose']} mcg over {duration_text(r[p + 'over'])}, at most {r[p + 'max_per_day']} a day, "
                f"{duration_text(r[p + 'lockout'])} apart")
    return f"patient bolus {side('old.')} -> {side('new.')}"


_PTM = ("dose:mcg", "over:dur", "max_per_day:n", "lockout:dur")

# event code -> (label, integer names with units, sentence)
EVENTS: dict[str, tuple[str, tuple[str, ...], Callable[[Rec], str]]] = {
    "program": ("program", ("old:x1440", "new:x1440"), _program),
    "override": ("override", ("new:x1440",), _override),
    "high_dose": ("high-dose warning", ("new:x1440", "lowest:x1440", "step:pct", "from:mcg"),
                  lambda r: f"{dose(r['new'])} is more than +{r['step']} % over the lowest daily dose of the last "
                            f"24 h ({dose(r['lowest'])}), at {r['from']} mcg/day or more: may be excessive"),
    "refill": ("refill", ("removed:nl", "expected:nl", "added:nl", "concentration:conc", "old_concentration:conc", "warned:flag"),
               _refill),
    "bolus": ("bolus", ("dose:mcg", "over:dur", "concentration:conc"),
              lambda r: f"{r['dose']} mcg" + (f" ({ml(r['dose'] * 1_000_000 // r['concentration'])})" if r["concentration"] else "")
                        + f" over {duration_text(r['over'])}"),
    "prime": ("priming", ("catheter:nl", "tubing:nl"),
              lambda r: f"catheter {ml(r['catheter'])} + pump tubing {ml(r['tubing'])} at {ml_fact(fact('MAX_RATE_NL'))} mL/day; therapy pauses "
                        f"until it is done"),
    "primed": ("primed", ("volume:nl",), lambda r: f"priming done: {ml(r['volume'])} pushed; therapy resumes"),
    "prime_lost": ("priming interrupted", (), lambda r: "a reset interrupted priming: the catheter may not be "
                                                        "full; prime again"),
    "bridge_done": ("bridge done", ("concentration:conc",),
                    lambda r: f"the old drug has left the catheter: the pump now delivers {r['concentration']} mcg/mL"),
    "limits": ("limits", ("old:n", "new:n"), _limits),
    "clock": ("clock set", ("old:time", "new:time"),
              lambda r: f"from {local_time(r['old'], r.off)} to {local_time(r['new'], r.off)}"),
    "utc_offset": ("UTC offset", ("old:offset", "new:offset"),
                   lambda r: f"UTC{offset_text(r['old'])} -> UTC{offset_text(r['new'])}"),
    "ptm": ("patient bolus settings", tuple("old." + p for p in _PTM) + tuple("new." + p for p in _PTM), _ptm),
    "ptm_bolus": ("patient bolus", ("dose:mcg", "over:dur", "today:n", "max:n"),
                  lambda r: f"{r['dose']} mcg over {duration_text(r['over'])} ({r['today']} of at most {r['max']} "
                            f"in 24 h)"),
    "alarm_raised": ("alarm", ("value:n",), lambda r: _alarm(r, False)),
    "alarm_acked": ("alarm acknowledged", (), lambda r: f"{words(r.code(0))} acknowledged (silenced)"),
    "alarm_clear": ("alarm cleared", ("value:n",), lambda r: _alarm(r, True)),
    "stall_retry": ("stall restart", ("attempt:n",), lambda r: f"motor restart attempt {r['attempt']} failed"),
    "alarm_test": ("alarm test", (), lambda r: "both alarm tones played"),
    "auth_fail": ("authentication failed", ("count:n",), _auth_fail),
    "auth_locked": ("authentication locked", ("lockout:dur", "failures:n"),
                    lambda r: f"locked for {duration_text(r['lockout'])} after {r['failures']} failures"),
    "reset": ("reset", ("cause:cause",),
              lambda r: f"the pump restarted after a {RESET_CAUSES.get(r['cause'], 'reset')}; state after it: "
                        f"{words(r.code(0))}"),
    "clock_lost": ("clock lost", ("restored:time",),
                   lambda r: f"the clock lost time: restored to the last saved time {local_time(r['restored'], r.off)};"
                             f" set the clock"),
    "memory_lost": ("memory error", ("bad:n",),
                    lambda r: f"no valid saved state ({r['bad']} bad copies): stopped, safe defaults"),
    "memory_fixed": ("memory error, recovered", (),
                     lambda r: "one saved copy was bad: the pump recovered from the other"),
}
# event codes of firmware before records (text entries, codes cut to 12 bytes) that read otherwise
OLD_LABELS = {"prime": "priming", "priming_inte": "priming interrupted", "memory_criti": "memory error",
              "memory_noncr": "memory error, recovered", "warning": "warning", "refill_warn": "refill warning"}


def is_old(e: dict) -> bool:
    """An entry of firmware before records: text only (a record with text has integers too)."""
    return "text" in e and "n" not in e and "codes" not in e


def label(e: dict) -> str:
    row = EVENTS.get(e["event"])
    if is_old(e) and e["event"] in OLD_LABELS:
        return OLD_LABELS[e["event"]]
    return row[0] if row else e["event"].replace("_", " ")


def sentence(e: dict, off: int = 0) -> str:
    """The entry as a person reads it; an entry of older firmware (text only) in user words."""
    row = EVENTS.get(e["event"])
    if row is None or is_old(e):
        from host_tools.fields import words as device_words

        return device_words(e.get("text", ""))
    return row[2](Rec(row[1], e, off))


def fields(e: dict) -> dict:
    """The entry's values for scripts: user units, names from EVENTS (e.g. removed_ml, new_mcg_per_day)."""
    row = EVENTS.get(e["event"])
    out: dict = {}
    if row is None or is_old(e):
        return out
    if "codes" in e:
        out["codes"] = list(e["codes"])
    if e.get("text"):
        out["reason"] = e["text"]
    for spec, v in zip(row[1], e.get("n") or []):
        name, unit = spec.split(":")
        suffix, conv = UNITS[unit]
        group, _, name = name.rpartition(".")  # "old.dose": {"old": {"dose_mcg": ...}}
        (out.setdefault(group, {}) if group else out)[name + suffix] = conv(v)
    return out
