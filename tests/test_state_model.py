"""The host's state model (host_tools/state_model.py) and the docs generated from the table.

That the firmware's engine and this `transitions` model agree over random trigger sequences is
tested in tests/test_state_machine.py, which uses `state_model.build_machine` as its reference.
"""

from __future__ import annotations

import itertools

import pytest
from transitions import MachineError

from host_tools import state_model

TABLE = state_model.table()
TRIGGERS = sorted({t for t, _, _ in TABLE.TRANSITIONS})


def machine_successors(state: str) -> set[str]:
    """Where the transitions machine goes from `state`, trying every trigger of the table."""
    out = set()
    for trigger in TRIGGERS:
        model = state_model.build_machine()
        model.state = state
        try:
            model.trigger(trigger)
        except MachineError:
            continue
        out.add(model.state)
    return out


SUCCESSORS = {state: machine_successors(state) for state in TABLE.STATES}


def test_committed_doc_is_up_to_date():
    committed = state_model.DOC_PATH.read_text(encoding="utf-8") if state_model.DOC_PATH.exists() else ""
    assert committed == state_model.render_doc(), (
        f"docs/state-machine.md is stale for firmware/core/fsm_table.py: run {state_model.REGENERATE}")


def test_check_mode_agrees():
    assert state_model.main(["--check"]) == 0


def test_machine_starts_at_initial():
    assert state_model.build_machine().state == TABLE.INITIAL


def test_every_state_reachable_in_machine():
    seen, todo = {TABLE.INITIAL}, [TABLE.INITIAL]
    while todo:
        new = SUCCESSORS[todo.pop()] - seen
        seen |= new
        todo.extend(new)
    assert seen == set(TABLE.STATES), f"unreachable: {set(TABLE.STATES) - seen}"


@pytest.mark.parametrize("state", TABLE.STATES)
def test_no_dead_end(state):
    assert SUCCESSORS[state] - {state}, f"{state} has no way out to another state"


def test_is_legal_agrees_with_table():
    table_pairs = {(s, d) for _, s, d in TABLE.TRANSITIONS}
    for source, dest in itertools.product(TABLE.STATES, repeat=2):
        assert state_model.is_legal(source, dest) == ((source, dest) in table_pairs), (source, dest)
        assert state_model.is_legal(source, dest) == (dest in SUCCESSORS[source]), (source, dest)
    assert not state_model.is_legal("boot", "no_such_state")


def test_mermaid_shape():
    lines = state_model.mermaid().splitlines()
    assert lines[:2] == ["stateDiagram-v2", f"    [*] --> {TABLE.INITIAL}"]
    edge_lines = [line for line in lines[2:] if " --> " in line]
    assert len(edge_lines) == len({(s, d) for _, s, d in TABLE.TRANSITIONS})
    assert state_model.mermaid() == state_model.mermaid()


def test_every_state_has_a_description():
    descriptions = state_model.state_descriptions()
    assert list(descriptions) == list(TABLE.STATES)
    assert all(descriptions.values()), descriptions
