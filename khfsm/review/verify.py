"""A session's verify report as data: the hash chain, then a replay under the rules it was
judged by. The API's `verify`, the evidence bundle's `verify.json` and the bundle's offline
check all use this shape:

    {"intact": bool,
     "chain": {"ok": bool, "detail": str, "first_bad_seq": int | null, "events": int},
     "replay": {"identical": bool | null, "divergence": null | {"seq", "expected", "got"},
                "detail": str}}

`replay.identical` is null when the replay could not be made (the rules version is not
installed, the stream cannot be decoded); `intact` is then false: nothing was shown intact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from khfsm.domain.events import Event, SessionPrepared
from khfsm.domain.replay import replay
from khfsm.errors import KhfsmError
from khfsm.store.recorder import ChainReport, EventRecorder


def chain_dict(chain: ChainReport) -> dict[str, Any]:
    return {
        "ok": chain.ok,
        "detail": chain.message,
        "first_bad_seq": chain.first_bad_seq,
        "events": chain.events,
    }


def replay_dict(events: Sequence[Event]) -> dict[str, Any]:
    """Replay `events` under the rules version they were judged by, if it is installed."""
    from khfsm.registry import get_task

    if not events or not isinstance(events[0], SessionPrepared):
        return _not_replayed("the stream does not begin with SessionPrepared")
    prepared = events[0]
    try:
        task = get_task(prepared.task, prepared.rules_version)
        report = replay(events, task)
    except KhfsmError as error:  # rules not installed (UnknownTask), ReplayError, ...
        return _not_replayed(f"replay not possible: {error}")
    divergence = report.divergence
    if divergence is None:
        return {
            "identical": True,
            "divergence": None,
            "detail": f"replay under {prepared.rules_version} identical over {len(events)} events",
        }
    return {
        "identical": False,
        "divergence": {
            "seq": divergence.index,
            "expected": None if divergence.expected is None else repr(divergence.expected),
            "got": None if divergence.got is None else repr(divergence.got),
        },
        "detail": divergence.describe(),
    }


def verify_session(recorder: EventRecorder, session_id: str) -> dict[str, Any]:
    """Check a stored session: its hash chain, then its replay (see the module docstring).
    Raises the store's errors; a session that is not stored has `chain.ok` false."""
    chain = recorder.verify_chain(session_id)
    try:
        events = recorder.events(session_id)
    except KhfsmError as error:  # a row that no longer decodes: the chain names it
        replayed = _not_replayed(f"replay not possible: {error}")
    else:
        replayed = replay_dict(events) if events else _not_replayed("no events are stored")
    return {
        "intact": chain.ok and replayed["identical"] is True,
        "chain": chain_dict(chain),
        "replay": replayed,
    }


def _not_replayed(detail: str) -> dict[str, Any]:
    return {"identical": None, "divergence": None, "detail": detail}
