"""Every event the firmware logs has a sentence on the host (host_tools/log_events.py), in a
clinician's words: no device name, device unit or identifier, whatever codes the record holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alarms.catalogue import PRIORITY
from core.fsm_table import STATES
from hal import RESET_POWER, RESET_SOFT, RESET_WATCHDOG
from safety.limits import defaults

from host_tools import log_events
from test_clinical_words import clean_json, clean_text

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
LOGGED = re.compile(r"""\b(?:dev|self)\.log\(\s*"([a-z_]+)\"""")
MODES = ("stopped", "continuous", "flex", "periodic")
LIMITS = ("decrease", "initial_cap", "ceiling", "titration_window", "hard_max", "titration")


def firmware_events() -> set[str]:
    return {m.group(1) for p in FIRMWARE.rglob("*.py") for m in LOGGED.finditer(p.read_text())}


def samples(event: str) -> list[dict]:
    """Records of this event as the firmware writes them: every code it can hold, typical numbers."""
    names = log_events.EVENTS[event][1]
    n = [{"nl": 1_950_000, "x1440": 450_000, "time": 800_000_000, "dur": 1800, "offset": 60, "conc": 500,
          "flag": 1}.get(s.split(":")[1], 5) for s in names]
    codes: list[list[str]] = [[]]
    if event in ("alarm_raised", "alarm_clear", "alarm_acked"):
        codes = [[c] for c in PRIORITY] + [[c, "acknowledged"] for c in PRIORITY]
    elif event == "program":
        codes = [[a, b] for a in MODES for b in MODES]
    elif event == "override":
        codes = [[c] for c in LIMITS] + [list(LIMITS[:2])]
    elif event == "limits":
        codes = [[k] for k in defaults() if k not in ("profile", "ceiling")] + [["profile", "spinal", "cerebral"],
                                                                                 ["low_reservoir"]]
    elif event == "auth_fail":
        codes = [[k, w] for k in ("wrong_response", "bad_signature", "replay")
                 for w in ("patient", "clinician", "service", "patient_bolus", "limits")]
    elif event == "reset":
        codes = [[s] for s in STATES]
    out = [{"event": event, "n": n, "codes": c} for c in codes]
    if event in ("override", "program"):
        out += [{**e, "text": "agreed with the patient"} for e in out]
    if event == "reset":
        out += [{**e, "n": [cause]} for e in out for cause in (RESET_POWER, RESET_WATCHDOG, RESET_SOFT)]
    return out


def test_every_event_the_firmware_logs_has_a_sentence():
    logged = firmware_events()
    assert len(logged) >= 20, logged
    assert logged == set(log_events.EVENTS), (logged ^ set(log_events.EVENTS))


@pytest.mark.parametrize("event", sorted(log_events.EVENTS))
def test_each_sentence_is_in_clinical_words(event):
    for e in samples(event):
        text = log_events.sentence(e, 60)
        clean_text(text)
        clean_text(log_events.label(e))
        assert text and "{" not in text, (e, text)
        doc = log_events.fields(e)
        clean_json({k: v for k, v in doc.items() if k != "codes"})
        assert sum(len(v) if isinstance(v, dict) else 1 for k, v in doc.items() if k not in ("codes", "reason")) == len(e["n"]), doc


def test_reset_causes_are_the_firmwares():
    assert log_events.RESET_CAUSES.keys() == {RESET_POWER, RESET_WATCHDOG, RESET_SOFT}
