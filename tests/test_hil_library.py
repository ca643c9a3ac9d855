"""The scenario library (hil/scenarios/) as parametrised pytest cases on the --rig back end."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil import scenario
from hil.pytest_plugin import run_scenario
from hil.runner import scenario_files

LIBRARY = Path(__file__).resolve().parents[1] / "hil" / "scenarios"
FILES = scenario_files([LIBRARY])


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path, rig) -> None:
    run_scenario(scenario.load(path), rig)


def test_the_library_covers_every_field_incident_of_spec_12() -> None:
    incidents = {scenario.load(p).get("incident") for p in FILES}
    for year in ("2004", "2009/2011", "2011", "2012, 2019", "2013-2017", "2021"):
        assert year in incidents, year


def test_every_scenario_the_docs_name_exists() -> None:
    import re
    named = {m for doc in (LIBRARY.parents[1] / "docs").glob("*.md")
             for m in re.findall(r"hil/scenarios/([a-z0-9_]+\.(?:toml|json))", doc.read_text())}
    assert named and sorted(n for n in named if not (LIBRARY / n).exists()) == []
