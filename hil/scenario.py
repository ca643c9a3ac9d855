"""Scenarios are data (JSON): steps that drive a rig and a programmer session and check what happens.

Steps (one key names the action):
  {"advance": "6h"}                       move virtual time
  {"power_cut": "10m"}                    cut power for a while ("0s": momentary)
  {"expect_status": {"state": "stopped"}} device status fields must equal these
  {"expect_alarms": ["reset_recovered"]}  the active alarm codes, exactly
  {"expect_diag": {"ticks_ms": 60000}}    firmware diagnostics fields
  {"command": {"cmd": "program", "args": {...}}}   a device request, carried out (must succeed):
                                          a two-phase change (program, bolus, prime, refill,
                                          ptm with args) is prepared and committed
  {"expect_hardware": {"strokes": 4000}}  what the fixture measured (STEP pulses, ...)
  {"expect_therapy": {"primed_nl": 390000}}  fields of status' therapy detail

After every step the device's state is read; each change must be a legal
transition of the reference model built from the firmware's table.
"""

from __future__ import annotations

import json
from pathlib import Path

from host_tools import state_model
from host_tools.client import PumpClient
from host_tools.durations import parse_duration


class ScenarioFailed(AssertionError):
    pass


def load(path: Path) -> dict:
    data = json.loads(Path(path).read_text())
    if not isinstance(data.get("steps"), list):
        raise ValueError(f"{path}: a scenario needs a list of 'steps'")
    data.setdefault("name", Path(path).stem)
    return data


def run(scenario: dict, rig) -> int:
    """Run every step; raise ScenarioFailed naming the step. Returns the number of steps run."""
    port = rig.power_on(fresh=True)
    state = None
    for i, step in enumerate(scenario["steps"], 1):
        (action, arg), = step.items()
        where = f"step {i} ({action})"
        with PumpClient(port) as c:
            if action == "advance":
                rig.advance(parse_duration(arg, where))
            elif action == "power_cut":
                rig.power_cut(parse_duration(arg, where))
            elif action == "command":
                c.run(arg["cmd"], **arg.get("args", {}))
            elif action == "expect_alarms":
                codes = [a["code"] for a in c.status()["alarms"]]
                if codes != arg:
                    raise ScenarioFailed(f"{where}: alarms {codes}, expected {arg}")
            elif action in EXPECTS:
                _expect(where, EXPECTS[action](c, rig), arg)
            else:
                raise ValueError(f"{where}: unknown action '{action}'")
        with PumpClient(port) as c:
            now = c.status()["state"]
        if state is not None and now != state and action != "power_cut" and not state_model.is_legal(state, now):
            raise ScenarioFailed(f"{where}: the device went from {state} to {now}, not a transition of the model")
        state = now
    return len(scenario["steps"])


EXPECTS = {
    "expect_status": lambda c, rig: c.status(),
    "expect_diag": lambda c, rig: c.diag(),
    "expect_therapy": lambda c, rig: c.status()["therapy"],
    "expect_hardware": lambda c, rig: rig.hardware(),
}


def _expect(where: str, got: dict, want: dict) -> None:
    for key, value in want.items():
        if got.get(key) != value:
            raise ScenarioFailed(f"{where}: {key} = {got.get(key)!r}, expected {value!r}")
