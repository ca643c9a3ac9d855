"""The HIL runner runs the scenario library against virtual Picos and reports JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from hil import runner

SCENARIOS = Path(__file__).resolve().parents[1] / "hil" / "scenarios"


def test_scenario_library_passes_in_parallel(tmp_path):
    out = tmp_path / "junit.xml"
    assert runner.main(["run", str(SCENARIOS), "--jobs", "2", "--junit", str(out)]) == 0
    suite = ET.parse(out).getroot()
    assert int(suite.get("tests")) == len(list(SCENARIOS.glob("*.json"))) and suite.get("failures") == "0"


def test_a_failing_expectation_is_reported_with_the_step(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"steps": [{"advance": "1h"}, {"expect_status": {"state": "running"}}]}))
    out = tmp_path / "junit.xml"
    assert runner.main(["run", str(bad), "--junit", str(out)]) == 1
    assert "step 2 (expect_status): state = 'stopped', expected 'running'" in capsys.readouterr().out
    assert ET.parse(out).getroot().get("failures") == "1"


def test_bare_durations_in_scenarios_are_refused(tmp_path, capsys):
    bad = tmp_path / "bare.json"
    bad.write_text(json.dumps({"steps": [{"advance": "6"}]}))
    assert runner.main(["run", str(bad)]) == 1
    assert "has no unit" in capsys.readouterr().out


def test_real_board_rig_is_refused_clearly(capsys):
    assert runner.main(["run", str(SCENARIOS / "boot_new_pump.json"), "--rig", "/dev/ttyACM7"]) == 1
    assert "fixture board" in capsys.readouterr().out
