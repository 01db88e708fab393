"""`khfsm replay` and `khfsm verify`: audit a stored session.

replay: re-run the installed rules over the recorded frames and compare every derived event
and the outcome with what was recorded. verify: check the hash chain, then replay.

Exit codes: 0 identical (and chain intact); 1 the session differs (a divergence or a broken
chain); 2 the check could not be made (unknown session or exercise, changed rules without
--rescore, store unreachable). A session is named by its id or any unique prefix of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from khfsm.cli.db import database_url_option, open_store
from khfsm.cli.ids import resolve_session_id
from khfsm.domain.events import Event, SessionPrepared
from khfsm.domain.face import outcome_of
from khfsm.domain.fold import SessionSummary
from khfsm.domain.replay import ReplayReport
from khfsm.domain.task import Task


class CannotCheck(click.ClickException):
    exit_code = 2


# -- the work, independent of click's output ---------------------------------------------------


def load_events(recorder: Any, session_id: str) -> list[Event]:
    from khfsm.store import StoreError

    try:
        events = recorder.events(session_id)
    except StoreError as error:
        raise CannotCheck(str(error)) from error
    if not events:
        raise CannotCheck(f"no session {session_id} is stored; `khfsm sessions` lists them")
    if not isinstance(events[0], SessionPrepared):
        raise CannotCheck(f"session {session_id} does not begin with SessionPrepared")
    return events


def task_for(prepared: SessionPrepared, *, rescore: bool = False) -> Task:
    """The rules to replay the session under: the very version it was judged by, or with
    `rescore` the newest installed."""
    from khfsm.registry import UnknownTask, get_task

    try:
        return get_task(prepared.task, None if rescore else prepared.rules_version)
    except UnknownTask as error:
        hint = "" if rescore else " (--rescore judges it under the installed rules)"
        raise CannotCheck(f"cannot replay this {prepared.task} session: {error}{hint}") from error


def model_mismatches(prepared: SessionPrepared) -> list[str]:
    """Recorded model files whose hash differs from the installed manifest's.

    Replay runs the rules over the recorded keypoints, not the model, so a changed model does
    not make a replay inexact; it is reported because a re-assessment of the video would
    give different keypoints.
    """
    from khfsm.vision.manifest import ModelIntegrityError, load_manifest

    if not prepared.models:
        return []
    try:
        manifest = load_manifest()
    except ModelIntegrityError as error:
        return [f"installed models unknown: {error}"]
    installed = {entry.file: entry.sha256 for entry in manifest.values()}
    installed |= {name: entry.sha256 for name, entry in manifest.items()}
    notes = []
    for name, recorded in sorted(prepared.models.items()):
        current = installed.get(name)
        if current is None:
            notes.append(f"model {name} (sha256 {recorded[:12]}…) is no longer installed")
        elif current != recorded:
            notes.append(
                f"model {name} was sha256 {recorded[:12]}…, the installed one is {current[:12]}…"
            )
    return notes


def run_replay(events: Sequence[Event], *, rescore: bool) -> ReplayReport:
    from khfsm.domain.replay import ReplayError, replay

    prepared = events[0]
    assert isinstance(prepared, SessionPrepared)
    task = task_for(prepared, rescore=rescore)
    try:
        return replay(events, task, rescore=rescore)
    except ReplayError as error:
        hint = "" if rescore else " (--rescore judges it under the installed rules)"
        raise CannotCheck(f"{error}{hint}") from error


def outcome(summary: SessionSummary) -> dict[str, Any]:
    end = summary.end
    face = summary.face
    return {
        "count": summary.count,
        "total": summary.total,
        "status": [list(rep.status) for rep in summary.reps],
        "end_status": summary.end_status,
        "end_message": None if end is None else end.message,
        "frames": summary.frames,
        "outcome": summary.outcome,
        "face": None
        if face is None
        else {
            "outcome": int(outcome_of(face)),
            "similarity": face.similarity,
            "threshold": face.threshold,
        },
    }


def report_dict(session_id: str, report: ReplayReport, models: list[str]) -> dict[str, Any]:
    divergence = report.divergence
    return {
        "session_id": session_id,
        "identical": report.identical,
        "rescored": report.rescored,
        "recorded_rules_version": report.recorded_rules_version,
        "installed_rules_version": report.installed_rules_version,
        "model_mismatches": models,
        "divergence": None
        if divergence is None
        else {
            "seq": divergence.index,
            "expected": None if divergence.expected is None else repr(divergence.expected),
            "got": None if divergence.got is None else repr(divergence.got),
            "description": divergence.describe(),
        },
        "recorded": outcome(report.recorded),
        "replayed": outcome(report.replayed),
    }


# -- the commands -------------------------------------------------------------------------------


@click.command()
@click.argument("session_id")
@click.option("--rescore", is_flag=True, help="Judge the session under the installed rules.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@database_url_option
@click.pass_context
def replay(
    ctx: click.Context, session_id: str, rescore: bool, as_json: bool, database_url: str | None
) -> None:
    """Re-run the rules over a stored session and compare with what was recorded.

    SESSION_ID may be any unique prefix of the id (as `khfsm sessions` shows it).
    Exits 0 when identical, 1 on a divergence, 2 when the replay cannot be made.
    """
    recorder = open_store(ctx, database_url)
    try:
        session_id = resolve_session_id(recorder, session_id)
        events = load_events(recorder, session_id)
    finally:
        recorder.close()
    assert isinstance(events[0], SessionPrepared)
    models = model_mismatches(events[0])
    report = run_replay(events, rescore=rescore)
    if as_json:
        click.echo(json.dumps(report_dict(session_id, report, models), indent=2))
    else:
        _print_replay(session_id, events[0], report, models)
    ctx.exit(0 if report.identical else 1)


@click.command()
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@database_url_option
@click.pass_context
def verify(ctx: click.Context, session_id: str, as_json: bool, database_url: str | None) -> None:
    """Check a session's hash chain, then replay it.

    SESSION_ID may be any unique prefix of the id (as `khfsm sessions` shows it).
    Exits 0 when the chain is intact and the replay identical, 1 when either fails, 2 when
    the replay cannot be made.
    """
    from khfsm.store import StoreError

    recorder = open_store(ctx, database_url)
    try:
        session_id = resolve_session_id(recorder, session_id)
        try:
            chain = recorder.verify_chain(session_id)
        except StoreError as error:
            raise CannotCheck(str(error)) from error
        if chain.first_bad_seq is None and not chain.ok:
            raise CannotCheck(chain.message)  # no such session
        replayed: dict[str, Any] | None = None
        problem: str | None = None
        try:
            events = load_events(recorder, session_id)
            assert isinstance(events[0], SessionPrepared)
            report = run_replay(events, rescore=False)
            replayed = report_dict(session_id, report, model_mismatches(events[0]))
        except CannotCheck as error:
            problem = error.message
    finally:
        recorder.close()
    if as_json:
        document = {
            "session_id": session_id,
            "chain": {
                "ok": chain.ok,
                "first_bad_seq": chain.first_bad_seq,
                "message": chain.message,
            },
            "replay": replayed,
            "replay_error": problem,
        }
        click.echo(json.dumps(document, indent=2))
    else:
        mark = "ok" if chain.ok else f"BROKEN at event {chain.first_bad_seq}"
        click.echo(f"hash chain: {mark}: {chain.message}")
        if replayed is None:
            click.echo(f"replay: not possible: {problem}")
        elif replayed["identical"]:
            click.echo("replay: identical")
        else:
            click.echo(f"replay: {replayed['divergence']['description']}")
    if not chain.ok or (replayed is not None and not replayed["identical"]):
        ctx.exit(1)
    ctx.exit(0 if replayed is not None else 2)


def _print_replay(
    session_id: str, prepared: SessionPrepared, report: ReplayReport, models: list[str]
) -> None:
    rules = f"rules {report.recorded_rules_version}"
    if report.version_mismatch:
        rules += f", re-scored under installed rules {report.installed_rules_version}"
    click.echo(f"session {session_id}: {prepared.task}, capture {prepared.capture_id}, {rules}")
    for note in models:
        click.echo(f"note: {note}", err=True)
    if report.identical:
        click.echo("identical")
    else:
        assert report.divergence is not None
        click.echo(report.divergence.describe())
    recorded, replayed = outcome(report.recorded), outcome(report.replayed)
    rows = [
        ("count", recorded["count"], replayed["count"]),
        ("total", recorded["total"], replayed["total"]),
        ("status codes", _codes(recorded["status"]), _codes(replayed["status"])),
        ("outcome", _end(recorded), _end(replayed)),
        ("frames", recorded["frames"], replayed["frames"]),
    ]
    width = max(len(str(row[1])) for row in rows) + 2
    click.echo(f"{'outcome':<14}{'recorded':<{width}}replayed")
    for name, left, right in rows:
        flag = "" if left == right else "   <- differs"
        click.echo(f"{name:<14}{left!s:<{width}}{right}{flag}")


def _codes(statuses: list[list[int]]) -> str:
    return " ".join("+".join(str(code) for code in status) for status in statuses) or "-"


def _end(summary: dict[str, Any]) -> str:
    return str(summary["outcome"]) or "(not ended)"
