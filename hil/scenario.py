"""Scenarios are data (JSON): steps that drive a rig and a programmer session and check what happens.

Steps (one key names the action):
  {"advance": "6h"}                       move virtual time
  {"power_cut": "10m"}                    cut power for a while ("0s": momentary)
  {"expect_status": {"state": "stopped"}} device status fields must equal these
  {"expect_alarms": ["reset_recovered"]}  the active alarm codes, exactly
  {"expect_diag": {"ticks_ms": 60000}}    firmware diagnostics fields
"""

from __future__ import annotations

import json
from pathlib import Path

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
    for i, step in enumerate(scenario["steps"], 1):
        (action, arg), = step.items()
        where = f"step {i} ({action})"
        if action == "advance":
            rig.advance(parse_duration(arg, where))
        elif action == "power_cut":
            rig.power_cut(parse_duration(arg, where))
        elif action in ("expect_status", "expect_diag", "expect_alarms"):
            with PumpClient(port) as c:
                got = c.diag() if action == "expect_diag" else c.status()
            if action == "expect_alarms":
                codes = [a["code"] for a in got["alarms"]]
                if codes != arg:
                    raise ScenarioFailed(f"{where}: alarms {codes}, expected {arg}")
                continue
            for key, want in arg.items():
                if got.get(key) != want:
                    raise ScenarioFailed(f"{where}: {key} = {got.get(key)!r}, expected {want!r}")
        else:
            raise ValueError(f"{where}: unknown action '{action}'")
    return len(scenario["steps"])
