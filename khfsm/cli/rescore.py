"""`khfsm rescore`: what the newest installed rules would have decided on stored sessions.

What an exam board reads before it approves a rules upgrade: for every stored session chosen
by the same filters as `khfsm sessions`, the verdicts it was given (the ones recorded, under
the rules version its `SessionPrepared` names) beside the verdicts of the newest installed
rules for its task, per session (count, total, end) and per repetition.

The new verdicts come from `khfsm replay --rescore`'s machinery (the recorded inputs through a
fresh session under the newest rules); nothing is stored. Repetitions are paired by time:
an old and a new repetition whose frame windows overlap are the same attempt; an attempt
only one of the two rule sets found is shown alone. Sessions already judged by the newest
rules, face checks and sessions still running are listed as skipped, with the reason.

Exit codes: 0 the report was made (whether or not verdicts change); 2 the store cannot be read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click

from khfsm.cli.db import database_url_option, open_store
from khfsm.cli.replay import CannotCheck, load_events, outcome, run_replay
from khfsm.cli.sessions import filtered_sessions, session_filters
from khfsm.domain.events import RepCounted, SessionPrepared
from khfsm.domain.fold import SessionSummary

# -- the work, independent of click's output ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class RepPair:
    """One attempt as the old and the new rules saw it (None: that side did not find it)."""

    old: RepCounted | None
    new: RepCounted | None

    @property
    def changed(self) -> bool:
        return self.old is None or self.new is None or self.old.status != self.new.status


@dataclass(frozen=True, slots=True)
class Rescored:
    session_id: str
    row: Any  # khfsm.store.SessionRow
    old_rules: str
    new_rules: str
    old: SessionSummary
    new: SessionSummary
    reps: tuple[RepPair, ...]

    @property
    def changed(self) -> bool:
        old, new = outcome(self.old), outcome(self.new)
        keys = ("count", "total", "end_status")
        return any(p.changed for p in self.reps) or any(old[k] != new[k] for k in keys)


@dataclass(frozen=True, slots=True)
class Skipped:
    session_id: str
    row: Any
    reason: str


def pair_reps(old: Sequence[RepCounted], new: Sequence[RepCounted]) -> list[RepPair]:
    """Old and new repetitions paired by overlapping frame windows, in time order.

    Within one session the repetitions follow each other without overlapping, so one pass
    over both lists pairs each old repetition with the first new one sharing a frame.
    """
    pairs: list[RepPair] = []
    i = j = 0
    while i < len(old) or j < len(new):
        if j == len(new) or (i < len(old) and old[i].end_frame < new[j].start_frame):
            pairs.append(RepPair(old[i], None))
            i += 1
        elif i == len(old) or new[j].end_frame < old[i].start_frame:
            pairs.append(RepPair(None, new[j]))
            j += 1
        else:
            pairs.append(RepPair(old[i], new[j]))
            i += 1
            j += 1
    return pairs


def rescore_session(recorder: Any, row: Any) -> Rescored | Skipped:
    """One stored session under the newest installed rules for its task."""
    from khfsm.domain.exercise import Exercise
    from khfsm.registry import UnknownTask, get_exercise, get_task

    try:
        if not isinstance(get_task(row.task), Exercise):
            return Skipped(
                row.session_id, row, f"a {row.task} session has no repetitions to re-score"
            )
    except UnknownTask as error:
        return Skipped(row.session_id, row, str(error))
    if row.state in ("prepared", "running"):
        return Skipped(row.session_id, row, f"not ended yet ({row.state})")
    try:
        newest = get_exercise(row.task).rules_version
    except UnknownTask as error:
        return Skipped(row.session_id, row, str(error))
    events = load_events(recorder, row.session_id)
    prepared = events[0]
    assert isinstance(prepared, SessionPrepared)
    if prepared.rules_version == newest:
        return Skipped(row.session_id, row, f"already judged by the newest rules {newest}")
    report = run_replay(events, rescore=True)
    return Rescored(
        session_id=row.session_id,
        row=row,
        old_rules=report.recorded_rules_version,
        new_rules=report.installed_rules_version,
        old=report.recorded,
        new=report.replayed,
        reps=tuple(pair_reps(report.recorded.reps, report.replayed.reps)),
    )


# -- output -----------------------------------------------------------------------------------


def _rep_dict(rep: RepCounted | None) -> dict[str, Any] | None:
    if rep is None:
        return None
    return {
        "rep": rep.rep,
        "status": list(rep.status),
        "valid": rep.valid,
        "start_frame": rep.start_frame,
        "end_frame": rep.end_frame,
        "time": list(rep.time),
    }


def _session_dict(row: Any) -> dict[str, Any]:
    return {
        "session_id": row.session_id,
        "task": row.task,
        "capture_id": row.capture_id,
        "level": row.level,
        "created_at": row.created_at.isoformat(),
    }


def _verdict(summary: SessionSummary) -> dict[str, Any]:
    found = outcome(summary)
    return {k: found[k] for k in ("count", "total", "end_status", "end_message")}


def report_dict(results: Sequence[Rescored | Skipped]) -> dict[str, Any]:
    rescored = [r for r in results if isinstance(r, Rescored)]
    return {
        "rescored": len(rescored),
        "changed": sum(r.changed for r in rescored),
        "skipped": [
            {**_session_dict(r.row), "reason": r.reason} for r in results if isinstance(r, Skipped)
        ],
        "sessions": [
            {
                **_session_dict(r.row),
                "old_rules_version": r.old_rules,
                "new_rules_version": r.new_rules,
                "changed": r.changed,
                "old": _verdict(r.old),
                "new": _verdict(r.new),
                "reps": [
                    {"changed": p.changed, "old": _rep_dict(p.old), "new": _rep_dict(p.new)}
                    for p in r.reps
                ],
            }
            for r in rescored
        ],
    }


def _status_text(rep: RepCounted | None) -> str:
    if rep is None:
        return "(not an attempt)"
    return "valid" if rep.valid else "+".join(str(code) for code in rep.status)


def _time_text(pair: RepPair) -> str:
    rep = pair.old or pair.new
    assert rep is not None
    return f"{rep.time[0]:.1f}-{rep.time[1]:.1f}"


def _outcome_text(summary: SessionSummary) -> str:
    end = "" if summary.end is None else f", end {summary.end.status}"
    return f"{summary.count}/{summary.total}{end}"


def print_table(results: Sequence[Rescored | Skipped]) -> None:
    from rich.console import Console
    from rich.table import Table

    rescored = [r for r in results if isinstance(r, Rescored)]
    changed = sum(r.changed for r in rescored)
    table = Table(
        title=f"{len(rescored)} session(s) re-scored under the newest rules, {changed} changed",
        title_justify="left",
    )
    table.add_column("session", no_wrap=True)
    table.add_column("task", no_wrap=True)
    table.add_column("lane", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("rules", no_wrap=True)
    table.add_column("rep", justify="right")
    table.add_column("time (s)", no_wrap=True)
    table.add_column("old verdict", no_wrap=True)
    table.add_column("new verdict", no_wrap=True)
    table.add_column("", no_wrap=True)
    for r in rescored:
        row = r.row
        table.add_row(
            r.session_id,
            row.task,
            str(row.capture_id),
            row.created_at.astimezone().strftime("%Y-%m-%d %H:%M"),
            f"{r.old_rules} -> {r.new_rules}",
            "all",
            "",
            _outcome_text(r.old),
            _outcome_text(r.new),
            "changed" if r.changed else "same",
        )
        for number, pair in enumerate(r.reps, start=1):
            table.add_row(
                "",
                "",
                "",
                "",
                "",
                str(number),
                _time_text(pair),
                _status_text(pair.old),
                _status_text(pair.new),
                "<- differs" if pair.changed else "",
            )
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    for item in results:
        if isinstance(item, Skipped):
            console.print(f"skipped {item.session_id} ({item.row.task}): {item.reason}")


# -- the command --------------------------------------------------------------------------------


@click.command()
@database_url_option
@session_filters
@click.option("--limit", type=click.IntRange(min=1), help="At most this many sessions, newest.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.pass_context
def rescore(
    ctx: click.Context,
    database_url: str | None,
    task: str | None,
    capture_id: int | None,
    since: datetime | None,
    until: datetime | None,
    status: str | int | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Old verdict vs the newest installed rules' verdict, per session and per repetition.

    Sessions are chosen like `khfsm sessions` (newest first); nothing is stored.
    """
    from khfsm.store import StoreError

    recorder = open_store(ctx, database_url)
    try:
        rows = filtered_sessions(recorder, task, capture_id, since, until, status, limit)
        results = [rescore_session(recorder, row) for row in rows]
    except StoreError as error:
        raise CannotCheck(str(error)) from error
    finally:
        recorder.close()
    if as_json:
        click.echo(json.dumps(report_dict(results), indent=2))
    else:
        print_table(results)
