"""The session state machine, declared once with `transitions`.

idle → prepared → running → stopped | violated. The synchronous `Machine` with
`auto_transitions=False` and no callbacks: the machine only decides whether a trigger is
legal; the `Session` aggregate produces the events. An illegal trigger raises
`IllegalTransition` with a message for the operator and leaves the state untouched.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from transitions import Machine, MachineError

from khfsm.domain.codes import EndStatus
from khfsm.domain.errors import IllegalTransition


class State(StrEnum):
    IDLE = "idle"
    PREPARED = "prepared"
    RUNNING = "running"
    STOPPED = "stopped"
    VIOLATED = "violated"


class Trigger(StrEnum):
    PREPARE = "prepare"
    START = "start"
    STOP = "stop"
    TIME_UP = "time_up"
    VIOLATE = "violate"
    FAIL = "fail"


ENDED = frozenset({State.STOPPED, State.VIOLATED})


def end_state(status: int) -> State:
    """The state a session ends in with end status `status`: -3 is the end the `violate`
    trigger makes, every other end is `stopped`."""
    return State.VIOLATED if status == EndStatus.UNALLOWED_MOTION else State.STOPPED


# [trigger, source(s), destination]: the whole life of a session in one table. `stop` on an
# ended session is a reflexive transition: stop is idempotent.
TRANSITIONS: list[list[Any]] = [
    [Trigger.PREPARE, State.IDLE, State.PREPARED],
    [Trigger.START, State.PREPARED, State.RUNNING],
    [Trigger.STOP, [State.PREPARED, State.RUNNING], State.STOPPED],
    [Trigger.STOP, State.STOPPED, State.STOPPED],
    [Trigger.STOP, State.VIOLATED, State.VIOLATED],
    [Trigger.TIME_UP, State.RUNNING, State.STOPPED],
    [Trigger.VIOLATE, State.RUNNING, State.VIOLATED],
    [Trigger.FAIL, [State.PREPARED, State.RUNNING], State.STOPPED],
]

# Why a trigger is refused in a state, phrased for the operator; {who} names the lane.
_REFUSALS: dict[tuple[Trigger, State], str] = {
    (Trigger.PREPARE, State.PREPARED): "{who} is already prepared; start it or stop it first",
    (Trigger.PREPARE, State.RUNNING): "{who} is running; stop it before preparing again",
    (Trigger.PREPARE, State.STOPPED): "{who} has ended; prepare a new test",
    (Trigger.PREPARE, State.VIOLATED): "{who} has ended; prepare a new test",
    (Trigger.START, State.IDLE): "{who} is not prepared; send prepare first",
    (Trigger.START, State.RUNNING): "{who} is already running",
    (Trigger.START, State.STOPPED): "{who} has ended; send prepare to begin a new test",
    (Trigger.START, State.VIOLATED): "{who} has ended; send prepare to begin a new test",
    (Trigger.STOP, State.IDLE): "{who} is not prepared; there is nothing to stop",
}


def refusal(trigger: Trigger, state: State, who: str) -> str:
    text = _REFUSALS.get((trigger, state), f"{{who}} cannot {trigger.value} while {state.value}")
    return text.format(who=who)


class SessionMachine:
    """Holds one session's state; drive it from one task only."""

    state: str  # set by transitions

    def __init__(self, who: str = "the session", initial: State = State.IDLE) -> None:
        self.who = who
        self._machine = Machine(
            model=self,
            states=list(State),
            transitions=TRANSITIONS,
            initial=initial,
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )

    @property
    def current(self) -> State:
        return State(self.state)

    @property
    def ended(self) -> bool:
        return self.current in ENDED

    def may(self, trigger: Trigger) -> bool:
        return bool(self._machine.get_transitions(trigger=trigger, source=self.state))

    def fire(self, trigger: Trigger) -> State:
        """Apply `trigger` or raise `IllegalTransition` (state unchanged)."""
        if not self.may(trigger):
            raise IllegalTransition(refusal(trigger, self.current, self.who))
        try:
            self.trigger(trigger.value)  # type: ignore[attr-defined]
        except MachineError as error:  # pragma: no cover - guarded by may()
            raise IllegalTransition(refusal(trigger, self.current, self.who)) from error
        return self.current
