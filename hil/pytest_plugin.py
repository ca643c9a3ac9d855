"""pytest integration: `--rig sim|rp2040|board` and a `rig` fixture, so the scenario library (and any
test) runs as parametrised pytest cases on a chosen back end. tests/conftest.py loads it.

A back end that cannot run here, or lacks what a scenario needs, makes the case skip with the reason.
"""

from __future__ import annotations

import pytest

from hil import rig as rigs
from hil import scenario


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--rig", default="sim", help="HIL back end for the rig fixture: sim, rp2040 or board")


@pytest.fixture
def rig(request: pytest.FixtureRequest):
    """A rig of the --rig back end, closed after the test (skips when the back end is unavailable)."""
    spec = request.config.getoption("--rig")
    try:
        r = rigs.make_rig(spec)
    except rigs.Unavailable as e:
        pytest.skip(str(e))
    yield r
    r.close()


def run_scenario(sc: dict, rig: rigs.Rig) -> scenario.Outcome:
    """Run a loaded scenario on `rig`; skip (with the reason) when the back end lacks what it needs,
    fail with the step and the problem otherwise."""
    lacks = rig.capabilities.lacks(sc["needs"])
    if lacks:
        pytest.skip(f"the {rig.name} back end lacks {', '.join(lacks)}")
    out = scenario.run(sc, rig)
    if out.status != "passed":
        pytest.fail(f"{sc['file']}: {out.status}: {out.message}", pytrace=False)
    return out
