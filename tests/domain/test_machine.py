from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from khfsm.domain.errors import IllegalTransition
from khfsm.domain.machine import SessionMachine, State, Trigger

# The allowed transitions, written out independently of the machine's own table.
ALLOWED: dict[tuple[State, Trigger], State] = {
    (State.IDLE, Trigger.PREPARE): State.PREPARED,
    (State.PREPARED, Trigger.START): State.RUNNING,
    (State.PREPARED, Trigger.STOP): State.STOPPED,
    (State.PREPARED, Trigger.FAIL): State.STOPPED,
    (State.RUNNING, Trigger.STOP): State.STOPPED,
    (State.RUNNING, Trigger.TIME_UP): State.STOPPED,
    (State.RUNNING, Trigger.VIOLATE): State.VIOLATED,
    (State.RUNNING, Trigger.FAIL): State.STOPPED,
    (State.STOPPED, Trigger.STOP): State.STOPPED,
    (State.VIOLATED, Trigger.STOP): State.VIOLATED,
}


@given(st.lists(st.sampled_from(list(Trigger)), max_size=30))
def test_machine_follows_the_table_of_allowed_transitions(triggers: list[Trigger]) -> None:
    machine = SessionMachine("capture 2")
    expected = State.IDLE
    for trigger in triggers:
        target = ALLOWED.get((expected, trigger))
        if target is None:
            with pytest.raises(IllegalTransition) as refused:
                machine.fire(trigger)
            assert "capture 2" in str(refused.value)
            assert "Traceback" not in str(refused.value)
        else:
            assert machine.fire(trigger) is target
            expected = target
        assert machine.current is expected


@given(st.sampled_from(list(State)), st.sampled_from(list(Trigger)))
def test_may_agrees_with_fire(state: State, trigger: Trigger) -> None:
    machine = SessionMachine(initial=state)
    assert machine.may(trigger) == ((state, trigger) in ALLOWED)


def test_refusals_speak_to_the_operator() -> None:
    machine = SessionMachine("capture 2")
    with pytest.raises(IllegalTransition, match="capture 2 is not prepared; send prepare first"):
        machine.fire(Trigger.START)
    machine.fire(Trigger.PREPARE)
    machine.fire(Trigger.START)
    with pytest.raises(
        IllegalTransition, match="capture 2 is running; stop it before preparing again"
    ):
        machine.fire(Trigger.PREPARE)
    assert machine.current is State.RUNNING
