"""One place per fact (issue 14 item 3): each clinical or mechanical constant is defined once, in
the firmware module that enforces it; the host reads it as data (host_tools/pump_facts.py), and
every copy that remains (the docs' tables and sentences, the host's words, the rig's inputs, a
few firmware literals kept for heap) is checked here against that one place, so a copy that
drifts fails a test.

| fact | the one place | checked here |
|---|---|---|
| stroke volume | `dose.STROKE_NL` (`K_STROKE` computed from it) | docs, hil, demo |
| titration ranges per profile | `limits.PROFILES` | docs, host checks and help |
| limits' defaults and bounds | `limits.defaults()`, `DECREASE_PCT`, `HIGH_*`; `limits_cmd` bounds | docs, a new pump |
| drug library, rate range, tubing, flex steps | `dose.LIBRARY`, `MIN/MAX_RATE_NL`, `TUBING_NL`, `MAX_FLEX_STEPS` | docs |
| reason length | `checks._REASON_CHARS`, `REASON_BYTES` | docs, host |
| alarm codes, priorities | `alarms.PRIORITY` | docs, host words, HIL schema |
| alarm tones | `buzzer.py` | docs, `alarm_cmds` |
| alarm thresholds | `alarms.EMPTY_NL`, `alarm_rules.*_MV`, `EOS_AFTER_S` | docs, rig voltages |
| alarm words (name, advice) | `host_tools/alarm_words.CATALOGUE` | one entry per code; no raw code printed |
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from host_tools import alarm_words, cli, pump_facts, render, requests
from host_tools.pump_facts import FactError, fact

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# every constant the host, the rig, the bench and the demo read from the firmware
HOST_FACTS = ("STROKE_NL", "DS_PER_DAY", "K_STROKE", "TUBING_NL", "LIBRARY", "MAX_FLEX_STEPS", "MIN_RATE_NL",
              "MAX_RATE_NL", "PROFILES", "defaults", "DECREASE_PCT", "HIGH_DOSE_MCG", "HIGH_STEP_PCT",
              "_REASON_CHARS", "REASON_BYTES", "LOW_MIN_NL", "LOW_MAX_NL", "FACTORY_MAX_MCG", "_HARD_MAX_FLOOR_MCG",
              "_BOLUS_CAP_MAX_MCG", "PRIORITY", "CRITICAL", "NON_CRITICAL", "EMPTY_NL", "EOS_AFTER_S", "ERI_MV",
              "EOS_MV", "FAULT_MV", "TICK_MS", "CKPT_DAY_FRACTION", "ENTRIES", "_LOG_LAST_MAX")


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def num(text: str) -> int:
    """'2 000 000' or '2000000' -> 2000000."""
    return int(text.replace(" ", "").replace("\u202f", ""))


def nl(ml_text: str) -> int:
    """'0.140' (mL) -> 140000 (nL), exactly."""
    whole, _, frac = ml_text.partition(".")
    return int(whole) * 1_000_000 + int((frac + "000000")[:6])


def found(pattern: str, text: str, at_least: int = 1) -> list[re.Match]:
    """The pattern's matches; fewer than at_least means the doc was reworded and the test lost its
    hold, which is a failure too (fix the pattern, not the doc)."""
    out = list(re.finditer(pattern, text))
    assert len(out) >= at_least, (pattern, len(out))
    return out


# -- the reader: one definition, plain data, the value the firmware has ------------------------------

@pytest.mark.parametrize("name", HOST_FACTS)
def test_a_fact_is_defined_once_and_read_as_the_firmware_has_it(name):
    path = pump_facts.where(name)  # FactError when defined twice or nowhere
    module = ".".join(path.relative_to(pump_facts.FIRMWARE).with_suffix("").parts)
    value = getattr(importlib.import_module(module), name)
    assert fact(name) == (value() if callable(value) else value)


def test_the_reader_runs_no_firmware_code_and_refuses_a_second_definition(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("from micropython import const\nraise SystemExit('never run')\n"
                                   "A = const(250)\nB = A * 4\nT = (A, -1, 'x')\nD = {'k': B}\n"
                                   "def f():\n    return 1\nC = f()\nTWICE = 1\n"
                                   "def g(x):\n    return x\ndef h():\n    'doc'\n    return {'a': A}\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "b.py").write_text("TWICE = 2\nE = A + 1\nB = 3\nF = B + 1\n")
    monkeypatch.setattr(pump_facts, "FIRMWARE", tmp_path)
    pump_facts._definitions.cache_clear()
    pump_facts.fact.cache_clear()
    try:
        assert (fact("T"), fact("E")) == ((250, -1, "x"), 251)  # A: imported, the only one of its name
        assert fact("F") == 4  # B: the file's own, though another file has a B too
        assert (fact("f"), fact("h")) == (1, {"a": 250})  # what a function without arguments returns
        with pytest.raises(FactError, match="g must be defined in one place, found: nowhere"):
            fact("g")  # a function of its arguments is code, not data
        assert fact("D") == {"k": 1000}  # a.py's own B
        with pytest.raises(FactError, match="B must be defined in one place, found: a.py, pkg/b.py"):
            fact("B")  # asked for by name, it is two facts
        assert pump_facts.where("E") == tmp_path / "pkg" / "b.py"  # found wherever a module moves
        with pytest.raises(FactError, match="TWICE must be defined in one place, found: a.py, pkg/b.py"):
            fact("TWICE")
        with pytest.raises(FactError, match="C is not plain data: f()"):
            fact("C")
        with pytest.raises(FactError, match="NONE must be defined in one place, found: nowhere"):
            fact("NONE")
    finally:
        pump_facts._definitions.cache_clear()
        pump_facts.fact.cache_clear()


# -- stroke volume ---------------------------------------------------------------------------------

STROKE_IN_DOCS = (r"\bstroke\W{1,4}(?:=\s*)?\**(\d[\d ]*\d|\d) nL",  # 'one stroke = **250 nL', 'stroke 250 nL'
                  r"(\d[\d ]*\d|\d) nL (?:per|a) stroke\b",  # '250 nL per stroke'
                  r"(?<!/day )× (\d+)(?: nL|:)",  # '(strokes − priming strokes) × 250:', 'n × 250 nL'
                  r"/ (\d+)(?: nL)?[⌉⌋]")  # '⌈volume / 250⌉'


def test_k_stroke_is_computed_from_the_stroke_volume():
    from therapy import units as dose

    assert dose.K_STROKE == dose.STROKE_NL * dose.DS_PER_DAY
    assert dose.K_STROKE + dose.MAX_RATE_NL < 2**30  # the accumulator stays a small int (docs/therapy.md)


def test_the_docs_say_the_firmware_s_stroke_volume():
    stroke = fact("STROKE_NL")
    said = [(name, m.group(0), num(m.group(1))) for name in sorted(p.name for p in DOCS.glob("*.md"))
            for pattern in STROKE_IN_DOCS for m in re.finditer(pattern, doc(name))]
    assert len(said) >= 15, said
    assert [s for s in said if s[2] != stroke] == []
    k = found(r"K = (\d+) nL × ([\d ]+) ds/day = \**([\d ]+)\**", doc("therapy.md"))[0]
    assert (num(k[1]), num(k[2]), num(k[3])) == (stroke, fact("DS_PER_DAY"), fact("K_STROKE"))
    assert {num(m[1]) for m in found(r"K = ([\d ]+\d)\b", doc("therapy.md"), 2)} == {stroke, fact("K_STROKE")}


def test_the_host_side_counts_in_the_firmware_s_stroke():
    from hil import quantities

    from host_tools import demo

    assert quantities.STROKE_NL == fact("STROKE_NL")
    assert quantities.with_tolerance("7 mL ± 2 strokes", quantities.volume) == (7_000_000, 2 * fact("STROKE_NL"))
    assert demo.PRIME_STROKES == -(-(demo.CATHETER_NL + fact("TUBING_NL")) // fact("STROKE_NL"))


def test_no_stroke_volume_literal_is_left_on_the_host_side():
    """The 250 of a stroke, the 0.140 mL of the tubing: nowhere in host_tools/, hil/ or bench/ code."""
    stroke, tubing = str(fact("STROKE_NL")), f"{fact('TUBING_NL') / 1e6:.3f}"
    files = [*ROOT.glob("host_tools/*.py"), *ROOT.glob("hil/*.py"), *ROOT.glob("hil/vpico/*.py"), *ROOT.glob("bench/*.py")]
    hits = [(p.name, i, line) for p in files for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(rf"(?<![\d.]){stroke}(?![\d_])|{re.escape(tubing)}", line)]
    assert hits == []


# -- titration ranges, limits ------------------------------------------------------------------------

_PROFILE = r"(?:spinal|cerebral|pediatric)"
TITRATION_IN_DOCS = (rf"({_PROFILE}(?:,? (?:and )?{_PROFILE})*) (\d+) ?(?:\.\.|–) ?(\d+)(?: %)?"
                     r"(?: \(default \**\+?(\d+)(?: %)?\**\))?")


@pytest.mark.parametrize("name, at_least", [("protocol.md", 1), ("safety.md", 2)])
def test_the_docs_titration_ranges_are_the_firmware_s(name, at_least):
    profiles = fact("PROFILES")
    matches = found(TITRATION_IN_DOCS, doc(name), 2 * at_least)
    named = []
    for m in matches:
        for p in re.findall(_PROFILE, m[1]):
            named.append(p)
            assert (int(m[2]), int(m[3])) == profiles[p][:2], (m[0], profiles[p])
            if m[4] is not None:
                assert int(m[4]) == profiles[p][2], (m[0], profiles[p])
    assert sorted(named) == sorted(list(profiles) * at_least), named  # every profile, each time


def test_the_host_checks_and_says_the_firmware_s_titration_ranges():
    from host_tools.errors import UsageError

    profiles = fact("PROFILES")
    assert requests.TITRATION_RANGE == {p: r[:2] for p, r in profiles.items()}
    limits_help = cli.build_parser()._subparsers._group_actions[0].choices["limits"].format_help()  # type: ignore
    said = {p: (int(m[2]), int(m[3])) for m in found(TITRATION_IN_DOCS, requests.TITRATION_RANGES_TEXT)
            for p in re.findall(_PROFILE, m[1])}
    assert said == requests.TITRATION_RANGE
    for p, (lo, hi, _default) in profiles.items():
        args = cli.build_parser().parse_args(["limits", "--origin", p, "--titration", str(hi + 1)])
        with pytest.raises(UsageError, match=rf"--titration must be {lo}..{hi} % \(the {p} profile's range\)"):
            requests.build(args)
    assert " ".join(requests.TITRATION_RANGES_TEXT.split()) in " ".join(limits_help.split())


def test_the_protocol_s_limits_table_is_the_firmware_s():
    d, text = fact("defaults"), doc("protocol.md")

    def row(field: str, rest: str) -> re.Match:
        return found(rf"\| `{field}` \| int \| [^|\n]*?{rest}", text)[0]

    assert int(row("initial_cap_mcg", r"\(default (\d+)\)")[1]) == d["initial"]
    assert int(row("ceiling_mcg", r"\((\d+)\)")[1]) == d["ceiling"]
    m = row("hard_max_mcg", r"\(default (\d+), at most (\d+)\)")
    assert (int(m[1]), int(m[2])) == (d["hard_max"], fact("FACTORY_MAX_MCG"))
    assert int(row("bolus_cap_mcg", r"\(default (\d+)\)")[1]) == d["bolus_cap"]
    assert int(row("decrease_pct", r"(\d+):")[1]) == fact("DECREASE_PCT")
    m = row("high_dose_mcg", r"(\d+): above it a step over \+(\d+) %")
    assert (int(m[1]), int(m[2])) == (fact("HIGH_DOSE_MCG"), fact("HIGH_STEP_PCT"))
    assert int(found(r"`bolus_cap_mcg` \(1\.\.(\d+)\)", text)[0][1]) == fact("_BOLUS_CAP_MAX_MCG")
    m = found(r"`low_reservoir_nl` \(([\d ]+)\.\.([\d ]+) nL", text)[0]
    assert (num(m[1]), num(m[2])) == (fact("LOW_MIN_NL"), fact("LOW_MAX_NL"))
    m = found(r"`hard_max_mcg` alone \(max\((\d+), `initial_cap_mcg`\)\.\.(\d+)\)", text)[0]
    assert (int(m[1]), int(m[2])) == (fact("_HARD_MAX_FLOOR_MCG"), fact("FACTORY_MAX_MCG"))


def test_the_safety_analysis_limits_are_the_firmware_s():
    d, text = fact("defaults"), doc("safety.md")
    assert int(found(r"\*\*Initial-dose cap\*\* (\d+) mcg/day", text)[0][1]) == d["initial"]
    assert int(found(r"\*\*Ceiling\*\* (\d+) mcg/day", text)[0][1]) == d["ceiling"]
    assert int(found(r"\*\*Hard maximum\*\* default (\d+) mcg/day", text)[0][1]) == d["hard_max"]
    m = found(r"within max\((\d+), initial cap\)\.\.(\d+)", text)[0]
    assert (int(m[1]), int(m[2])) == (fact("_HARD_MAX_FLOOR_MCG"), fact("FACTORY_MAX_MCG"))
    m = found(r"\*\*Bolus cap\*\* (\d+) mcg by default \(clinician-settable 1\.\.(\d+)\)", text)[0]
    assert (int(m[1]), int(m[2])) == (d["bolus_cap"], fact("_BOLUS_CAP_MAX_MCG"))
    for m in found(r"increase > (\d+) % when the dose is already ≥ (\d+) mcg/day|reference ≥ (\d+) mcg/day and "
                   r"new > \+(\d+) %", text, 2):
        step, high = (m[1], m[2]) if m[1] else (m[4], m[3])
        assert (int(step), int(high)) == (fact("HIGH_STEP_PCT"), fact("HIGH_DOSE_MCG")), m[0]
    assert int(found(r"a decrease of more than (\d+) % in 24 h", text)[0][1]) == fact("DECREASE_PCT")
    assert int(found(r"new < (\d+) % of the \*\*highest\*\*", text)[0][1]) == 100 - fact("DECREASE_PCT")
    assert int(found(r"exactly −(\d+) % passes", text)[0][1]) == fact("DECREASE_PCT")
    low = (fact("LOW_MIN_NL"), fact("LOW_MAX_NL"))
    for m in found(r"(?:settable|threshold) (\d\.\d)–(\d\.\d) mL", text, 2):
        assert (nl(m[1]), nl(m[2])) == low, m[0]


def test_a_new_pump_answers_the_documented_defaults(flash, fast_calls):
    from device_harness import Pump

    ok, lim = Pump(flash).send("limits")
    assert ok, lim
    d = fact("defaults")
    assert (lim["profile"], lim["titration_pct"], lim["titration_range"]) == (
        d["profile"], d["titration"], list(fact("PROFILES")[d["profile"]][:2]))
    assert (lim["initial_cap_mcg"], lim["ceiling_mcg"], lim["hard_max_mcg"], lim["bolus_cap_mcg"]) == (
        d["initial"], d["ceiling"], d["hard_max"], d["bolus_cap"])
    # the low-reservoir default lives in the device's state (device.py), not in a constant: its copies
    # in the docs are checked against what a new pump answers
    low = lim["low_reservoir_nl"]
    assert num(found(r"\| `low_reservoir_nl` \| int \| [^|\n]*\(default ([\d ]+)\)", doc("protocol.md"))[0][1]) == low
    assert nl(found(r"default (\d\.\d) mL, settable", doc("safety.md"))[0][1]) == low
    assert fact("LOW_MIN_NL") <= low <= fact("LOW_MAX_NL")


# -- drug library, rates, tubing, flex steps, reasons ---------------------------------------------------

def test_the_docs_drug_library_is_the_firmware_s():
    lists = [tuple(int(x) for x in m[1].split(", "))
             for name in ("protocol.md", "therapy.md", "safety.md", "programmer.md")
             for m in re.finditer(r"library[^0-9|\n]{0,12}?(\d+(?:, \d+)+)", doc(name))]
    assert len(lists) >= 3 and set(lists) == {fact("LIBRARY")}, lists


WRONG_TUBING_NL = 199_000  # the tubing volume of the 2013-2017 field incident, which the docs name as such


def test_the_docs_rate_range_tubing_and_minimum_rate_are_the_firmware_s():
    lo, hi, tubing = fact("MIN_RATE_NL"), fact("MAX_RATE_NL"), fact("TUBING_NL")
    texts = {name: doc(name) for name in ("protocol.md", "safety.md", "therapy.md", "programmer.md", "hil.md")}
    ranges = [(nl(m[1]), nl(m[2])) for t in texts.values() for m in re.finditer(r"(\d\.\d+)(?:\.\.|–)(\d+) mL/day", t)]
    assert len(ranges) >= 4 and set(ranges) == {(lo, hi)}, ranges
    m = found(r"\*\*([\d ]+)\.\.([\d ]+) nL/day\*\*", texts["protocol.md"])[0]
    assert (num(m[1]), num(m[2])) == (lo, hi)
    minimum = [nl(m[1]) for t in texts.values() for m in re.finditer(r"[Mm]inimum rate\**,? (\d\.\d+) mL/day", t)]
    assert len(minimum) >= 2 and set(minimum) == {lo}, minimum
    # the tubing: every volume the docs give it, but the wrong 0.199 mL of the 2013-2017 field incident
    said = [nl(m[1] or m[2]) for t in texts.values()
            for m in re.finditer(r"(\d\.\d{3}) mL\**(?: of)? (?:pump )?tubing|tubing \**(\d\.\d{3}) mL", t)]
    said += [nl(m[1]) for t in texts.values() for m in re.finditer(r"\+ \**(\d\.\d{3}) mL", t)]
    said = [v for v in said if v != WRONG_TUBING_NL]
    assert len(said) >= 4 and set(said) == {tubing}, said
    assert int(found(r"`dose\.TUBING_NL = (\d+)`", texts["safety.md"])[0][1]) == tubing


def test_the_firmware_s_own_rate_message_says_its_range():
    from safety import field_checks as checks
    from core.errors import CommandError

    with pytest.raises(CommandError) as e:
        checks.check_rate("dose", 1, (500,), "dose_mcg")
    assert f"rate range {pump_facts.ml(fact('MIN_RATE_NL'))}..{pump_facts.ml(fact('MAX_RATE_NL'))} mL/day" \
        in str(e.value.args)


def test_the_docs_flex_step_count_is_the_firmware_s():
    n = fact("MAX_FLEX_STEPS")
    said = [int(m[1]) for name in ("protocol.md", "safety.md", "therapy.md", "programmer.md")
            for m in re.finditer(r"(?:[Uu]p to|≤|at most|1\.\.|of|more than) (\d+)(?: flex)? steps?\b|more than (\d+);",
                                 doc(name)) if m[1]]
    assert len(said) >= 5 and set(said) == {n}, said
    assert requests.MAX_FLEX_STEPS == n


def test_the_docs_reason_length_is_the_firmware_s():
    chars, size = fact("_REASON_CHARS"), fact("REASON_BYTES")
    m = found(r"a string of 1\.\.(\d+)\s+characters, not blank, and at most (\d+) bytes", doc("protocol.md"))[0]
    assert (int(m[1]), int(m[2])) == (chars, size)
    assert (requests.REASON_MAX, requests.REASON_BYTES) == (chars, size)
    for m in found(r"reason of 1\.\.(\d+) characters|at most (\d+) bytes of UTF-8", doc("protocol.md"), 2):
        assert int(m[1] or m[2]) == (chars if m[1] else size), m[0]


# -- alarms: codes, priorities, tones, thresholds, words --------------------------------------------------

def test_the_protocol_s_alarm_catalogue_is_the_firmware_s():
    rows = {m[1]: m[2] for m in found(r"(?m)^\| `(\w+)` \| (critical|non_critical) \|", doc("protocol.md"), 9)}
    assert rows == fact("PRIORITY")


# the safety analysis names alarms as a clinician does; its AL rows give each one's priority
SAFETY_ALARM_NAMES = {"Low reservoir": "low_reservoir", "Empty reservoir": "empty_reservoir", "Motor stall": "motor_stall",
                      "ERI": "battery_eri", "EOS": "battery_eos", "Battery fault": "battery_fault",
                      "Reset recovered": "reset_recovered", "Memory non-critical": "memory_noncritical",
                      "Memory critical": "memory_critical"}


def test_the_safety_analysis_alarm_priorities_are_the_firmware_s():
    codes = fact("PRIORITY")
    said = {SAFETY_ALARM_NAMES[m[1]]: m[2].replace("-", "_")
            for m in found(r"\*\*([A-Z][A-Za-z -]*)\*\* \(((?:non-)?critical)\)", doc("safety.md"), 7)}
    said.update({SAFETY_ALARM_NAMES[m[1]]: m[2].replace("-", "_").replace("noncritical", "non_critical")
                 for m in found(r"\*\*(Memory (non-critical|critical))\*\*", doc("safety.md"), 2)})
    assert said == codes
    assert set(SAFETY_ALARM_NAMES.values()) == set(codes)


def test_the_host_has_words_for_exactly_the_firmware_s_alarms():
    from hil import schema

    codes = fact("PRIORITY")
    assert set(alarm_words.CATALOGUE) == set(codes)
    assert set(alarm_words.PRIORITY_WORDS) == set(codes.values())
    assert all(c in codes for c in alarm_words.MINIMUM_RATE_CAUSES)
    for code in codes:
        assert schema.ALARM_CODE(code) == code


def test_the_host_prints_no_raw_alarm_code_or_priority_tag():
    codes = fact("PRIORITY")
    alarms = [{"code": c, "priority": p, "since": "2000-01-01T00:00:00Z", "acknowledged": i % 2 == 0,
               "restarts_failed": 2} for i, (c, p) in enumerate(codes.items())]
    status = {"state": "alarm_critical", "mode": "continuous", "daily_dose_mcg": 100, "rate_ml_per_day": 0.2,
              "concentration_mcg_per_ml": 500, "reservoir_ml": 0.4, "reservoir_capacity_ml": 20.0, "alarms": alarms,
              "alarm_date": "2000-01-01T00:00:00Z", "refill_date": "2000-01-02T00:00:00Z",
              "clock": "2000-01-03T00:00:00Z", "utc_offset": "+00:00", "firmware_version": "0.2.0",
              "serial": "ITB-1", "port": "/dev/x"}
    texts = [render.alarms_text({"alarms": alarms, "acknowledged": list(codes)}), render.status_text(status, "rp2"),
             render.alarm_test_text({"playing": sorted(set(codes.values())), "duration_ms": 5000})]
    for text in texts:
        for word in {*codes, *codes.values()}:
            if "_" in word:  # a code; "critical" is also the word for the priority
                assert not re.search(rf"\b{word}\b", text), (word, text)
    assert all(alarm_words.CATALOGUE[c].label in texts[0] and alarm_words.CATALOGUE[c].advice in texts[0]
               for c in codes)


def test_the_docs_alarm_thresholds_are_the_firmware_s():
    text = doc("protocol.md")
    eri, eos, fault, empty = fact("ERI_MV"), fact("EOS_MV"), fact("FAULT_MV"), fact("EMPTY_NL")
    table = {m[1]: m[0] for m in found(r"(?m)^\| `(\w+)` \| (?:critical|non_critical) \|.*$", text, 9)}
    assert re.search(rf"at or below {eri} mV", table["battery_eri"])
    assert re.search(rf"at or below {eos} mV .* or {fact('EOS_AFTER_S') // 86400} days after ERI", table["battery_eos"])
    assert re.search(rf"below {fault} mV.*a reading of {fault} mV or more", table["battery_fault"])
    assert nl(re.search(r"at or below (\d\.\d) mL", table["empty_reservoir"])[1]) == empty
    safety = doc("safety.md")
    assert int(found(r"\*\*ERI\*\* \(non-critical\) at ≤ (\d+) mV", safety)[0][1]) == eri
    assert int(found(r"at ≤ (\d+) mV or (\d+) days after ERI", safety)[0][1]) == eos
    assert int(found(r"below (\d+) mV \*\(sim default\)\*: minimum rate", safety)[0][1]) == fault
    assert nl(found(r"\*\*Empty reservoir\*\* \(critical\) at ≤ (\d\.\d) mL", safety)[0][1]) == empty


def test_the_rig_drives_each_battery_alarm_inside_its_band():
    from hil import rig

    eri, eos, fault = fact("ERI_MV"), fact("EOS_MV"), fact("FAULT_MV")
    band = {"battery_eri": lambda v: eos < v <= eri, "battery_eos": lambda v: fault <= v <= eos,
            "battery_fault": lambda v: v < fault, "nominal": lambda v: v > eri}
    cli_mv = {k.replace("-", "_"): (int(on.split()[1]), int(off.split()[1]))
              for k, v in cli.SIM_FAULTS.items() if k.startswith("battery") for on, off in [v]}
    assert set(cli_mv) == set(rig.BATTERY_MV) == {"battery_eri", "battery_eos", "battery_fault"}
    for code, (on, off) in cli_mv.items():
        assert band[code](on) and band[code](rig.BATTERY_MV[code]) and band["nominal"](off), code
    assert band["nominal"](rig.NOMINAL_MV)


def test_the_tones_the_docs_describe_are_the_buzzer_s():
    from requests import alarms as alarm_cmds
    from alarms import tones as buzzer

    non, crit = buzzer.KIND_NON_CRITICAL, buzzer.KIND_CRITICAL
    m = found(r"non-critical = one (\d+) s tone every (\d+) min; critical = two tones alternating\s+for (\d+) s, "
              r"every (\d+) min", doc("safety.md"))[0]
    assert int(m[1]) * 1000 == buzzer.length_ms(buzzer.PATTERNS[non]) and len(buzzer.PATTERNS[non]) == 2
    assert int(m[2]) * 60_000 == buzzer.EVERY_MS[non]
    assert int(m[3]) * 1000 == buzzer.length_ms(buzzer.PATTERNS[crit])
    assert len(set(buzzer.PATTERNS[crit][0::2])) == 2 and int(m[4]) * 60_000 == buzzer.EVERY_MS[crit]
    # alarm_cmds keeps the test pattern's step and length as literals (it does not load buzzer)
    assert alarm_cmds._TEST_STEP == buzzer.KIND_TEST * 64
    assert alarm_cmds._TEST_MS == buzzer.length_ms(buzzer.TEST_TONE)
    assert int(found(r"\(`duration_ms` (\d+)\)", doc("protocol.md"))[0][1]) == alarm_cmds._TEST_MS


def test_firmware_literals_kept_for_heap_match_their_source():
    from alarms import rules as alarm_rules
    from core import device

    assert alarm_rules.TICK_S * 1000 == device.TICK_MS
    assert alarm_words.EOS_AFTER_DAYS * 86400 == alarm_rules.EOS_AFTER_S


def test_the_answer_after_a_change_says_the_state_in_words():
    """A commit or a patient bolus answers the pump's state: its words, never the state's code."""
    for state in ("minimum_rate", "alarm_critical"):
        text = render.committed_text({"committed": "program", "state": state, "mode": "continuous",
                                      "daily_dose_mcg": 100, "rate_nl_per_day": 200_000,
                                      "concentration_mcg_per_ml": 500})
        assert f"  state          {render.STATE_WORDS[state]}" in text and state not in text, text


def test_the_docs_event_log_sizes_are_the_firmware_s():
    from storage import event_log as evlog

    from host_tools import client

    slots, entries, per_entry = evlog.CAPACITY, evlog.ENTRIES, evlog.MAX_MORE + 1
    m = found(r"\*\*Event log\*\*: (\d+) time-stamped (\d+)-byte slots[^|]*?newest (\d+) entries[^|]*?spans up to "
              r"(\d+) slots", doc("safety.md"))[0]
    assert tuple(int(x) for x in m.groups()) == (slots, evlog.REC, entries, per_entry)
    text = doc("protocol.md")
    m = found(r"`last` \(1\.\.(\d+), default (\d+)\)", text)[0]
    assert (int(m[1]), int(m[2])) == (fact("_LOG_LAST_MAX"), client.LOG_DEFAULT_LAST)
    assert [int(m[1] or m[2]) for m in found(r'"capacity": (\d+)|\((\d+); spec §6', text, 2)] == [entries] * 2
    assert int(found(r"keeps more \(up to (\d+)\)", text)[0][1]) == slots
    assert cli.LOG_CAPACITY == entries and client.LOG_MAX_PER_REQUEST == fact("_LOG_LAST_MAX")


# -- request fields: the device's bounds are the one place; the docs and the host's checks follow ----------

def _device_bounds(pump, cmd: str, field: str, args: dict) -> tuple[int, int]:
    """(min, max) of a field, from the device's structured refusals of a value below and above."""
    got = []
    for probe in (-(10**9), 10**9):
        ok, e = pump.send(cmd, **{**args, field: probe})
        assert not ok and e["field"] == field, e
        got.append(e["min" if probe < 0 else "max"])
    return got[0], got[1]


def test_the_documented_field_bounds_are_the_device_s(flash, fast_calls):
    from device_harness import Pump

    p = Pump(flash)
    p.change("refill", removed_nl=0, added_nl=20_000_000, concentration=500)
    ptm = {"enable": True, "dose_mcg": 10, "over_s": 600, "max_per_day": 4, "lockout_s": 3600}
    b = {f: _device_bounds(p, "ptm", f, ptm) for f in ("dose_mcg", "max_per_day", "lockout_s")}
    b["over_s"] = _device_bounds(p, "ptm", "over_s", {**ptm, "lockout_s": 86_400})
    protocol, safety = doc("protocol.md"), doc("safety.md")
    m = found(r'"dose_mcg"\s+\((\d+)\.\.(\d+)\), "over_s" \((\d+)\.\.(\d+), at most lockout_s\), "max_per_day" '
              r'\((\d+)\.\.(\d+)\), "lockout_s"\s+\((\d+)\.\.(\d+)\)', protocol)[0]
    assert [int(x) for x in m.groups()] == [*b["dose_mcg"], *b["over_s"], *b["max_per_day"], *b["lockout_s"]]
    m = found(r"dose (\d+)\.\.(\d+) mcg, duration (\d+) s\.\.(\d+) h and ≤ lockout, max (\d+)\.\.(\d+) per rolling "
              r"24 h, lockout (\d+) min\.\.(\d+) h", safety)[0]
    said = [int(x) for x in m.groups()]
    assert said == [*b["dose_mcg"], b["over_s"][0], b["over_s"][1] // 3600, *b["max_per_day"],
                    b["lockout_s"][0] // 60, b["lockout_s"][1] // 3600]

    cath = _device_bounds(p, "prime", "catheter_nl", {})
    assert [num(x) for x in found(r"`catheter_nl` \| int, ([\d ]+)\.\.([\d ]+) nL", protocol)[0].groups()] == list(cath)
    assert nl(found(r"Catheter volume 0\.\.(\d+(?:\.\d+)?) mL", safety)[0][1]) == cath[1] and cath[0] == 0
    assert nl(found(r"catheter volume ≤ (\d+(?:\.\d+)?) mL", safety)[0][1]) == cath[1]
    assert num(found(r"the pump adds its ([\d ]+) nL of tubing", protocol)[0][1]) == fact("TUBING_NL")

    dose = _device_bounds(p, "program", "dose_mcg", {"mode": "continuous"})
    rows = found(r"int,? (\d+)\.\.(\d+) mcg(?:/day)?\b", protocol, 5)
    assert {(int(m[1]), int(m[2])) for m in rows} == {dose}

    offset = _device_bounds(p, "clock", "utc_offset_min", {})
    assert (requests.UTC_OFFSET_MIN, requests.UTC_OFFSET_MAX) == offset
    m = found(r"`utc_offset_min` \| optional int, −(\d+)\.\.(\d+) \(−(\d\d:\d\d)\.\.\+(\d\d:\d\d)\)", protocol)[0]
    assert (-int(m[1]), int(m[2])) == offset
    assert ("-" + m[3], "+" + m[4]) == tuple(render.offset_text(x) for x in offset)


def test_the_rp2_main_loop_wakes_often_enough_for_its_watchdog():
    """An idle Pico wakes at least every _LINK_WAKE_MS to feed the watchdog (hal/rp2.py): the wait
    takes less than half the watchdog's timeout (app.py), the rest is for the requests
    served in one pass (the longest measured on the emulated RP2040 is ~0.5 s, docs/rp2040.md), and
    the timeout stays within the chip's limit."""
    assert fact("_LINK_WAKE_MS") * 2 < fact("WATCHDOG_MS") <= fact("WDT_MAX_MS")


def test_dose_fields_have_one_bound_which_the_protocol_states():
    """A dose field (continuous, flex step, periodic basal and bolus, clinician bolus) takes
    1..DOSE_FIELD_MAX_MCG (firmware/safety/field_checks.py): no request module writes the number again, and
    every dose row of docs/protocol.md says it."""
    top = fact("DOSE_FIELD_MAX_MCG")
    for path in sorted((ROOT / "firmware").rglob("*.py")):
        if "hal" in path.parts:  # hardware (an I2C clock of 100000 Hz), no dose
            continue
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if re.search(rf"\b{top}\b", ln)]
        assert len(lines) == (1 if path.name == "field_checks.py" else 0), (path, lines)
    rows = found(r"`(?:dose_mcg|basal_mcg|bolus_mcg)`[^\n]*?1\.\.(\d+) mcg", doc("protocol.md"), at_least=4)
    assert {int(m[1]) for m in rows} == {top}


def test_the_firmware_s_messages_say_its_rate_range():
    """The refusals and the priming summary write the rate range as text (no mL formatting code
    is loaded for them on a Pico: heap); this holds each number to dose.MIN_RATE_NL / MAX_RATE_NL."""
    lo, hi = fact("MIN_RATE_NL"), fact("MAX_RATE_NL")
    fw = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "firmware").rglob("*.py") if "hal" not in p.parts}
    ranges = [(nl(m[1]), nl(m[2])) for t in fw.values() for m in re.finditer(r"range (\d\.\d+)\.\.(\d+) mL/day", t)]
    assert ranges == [(lo, hi)]
    tops = [nl(m[1]) for t in fw.values() for m in re.finditer(r"(?:maximum|at) (\d+) mL/day", t)]
    assert len(tops) >= 3 and set(tops) == {hi}, tops
