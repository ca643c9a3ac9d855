"""The firmware's engine runs the transition table exactly as a `transitions` machine built from it."""

from __future__ import annotations

from core import fsm
from core import fsm_table
import pytest
from hypothesis import given
from hypothesis import strategies as st
from transitions import MachineError

from host_tools.state_model import build_machine as reference_machine

TRIGGERS = sorted({t for t, _, _ in fsm_table.TRANSITIONS})


def test_table_is_well_formed():
    assert fsm_table.INITIAL in fsm_table.STATES
    for trigger, source, dest in fsm_table.TRANSITIONS:
        assert source in fsm_table.STATES and dest in fsm_table.STATES, (trigger, source, dest)
    pairs = [(t, s) for t, s, _ in fsm_table.TRANSITIONS]
    assert len(pairs) == len(set(pairs)), "a trigger from one state must lead to one place"


def test_every_state_is_reachable():
    seen = {fsm_table.INITIAL}
    frontier = [fsm_table.INITIAL]
    while frontier:
        s = frontier.pop()
        for _, src, dest in fsm_table.TRANSITIONS:
            if src == s and dest not in seen:
                seen.add(dest)
                frontier.append(dest)
    assert seen == set(fsm_table.STATES)


@given(st.lists(st.sampled_from(TRIGGERS), max_size=40))
def test_engine_matches_transitions_reference(triggers):
    ref = reference_machine()
    changes = []
    engine = fsm.Fsm(fsm_table.TRANSITIONS, fsm_table.INITIAL, lambda s, t, d: changes.append((s, t, d)))
    for t in triggers:
        try:
            ref.trigger(t)  # type: ignore[attr-defined]
            legal = True
        except MachineError:
            legal = False
        assert engine.can(t) == legal
        if legal:
            before = engine.state
            engine.fire(t)
            assert changes[-1] == (before, t, engine.state)
        else:
            with pytest.raises(fsm.IllegalTransition):
                engine.fire(t)
        assert engine.state == ref.state  # type: ignore[attr-defined]
