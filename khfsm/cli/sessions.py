"""`khfsm sessions`: the stored sessions, newest first, as a table or as JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from khfsm.cli.db import database_url_option, open_store
from khfsm.domain.fold import SessionSummary, fold
from khfsm.domain.machine import State
from khfsm.domain.review import ReviewedResult

# The states a stored session can be in (it is stored from `prepared` on).
STATES = tuple(state.value for state in State if state is not State.IDLE)


class Moment(click.ParamType):
    """An ISO date or date-time; without a zone it is local time, as an operator means it."""

    name = "DATETIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date or date-time like 2025-03-01 or 2025-03-01T14:30")
        return (moment if moment.tzinfo else moment.astimezone()).astimezone(UTC)


class StatusFilter(click.ParamType):
    """A state name or an end status code."""

    name = "STATUS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip().lower()
        if text in STATES:
            return text
        try:
            return int(text)
        except ValueError:
            self.fail(f"{value!r} is not one of {', '.join(STATES)} or an end code like -2")


def session_filters(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filters `khfsm sessions` and `khfsm rescore` choose sessions by (one definition)."""
    options = [
        click.option("--task", help="Only this task (pushup, situp, ..., FaceDetection)."),
        click.option("--capture", "capture_id", type=int, help="Only this lane (CaptureID)."),
        click.option(
            "--since", type=Moment(), help="Created at or after (ISO; local time if no zone)."
        ),
        click.option("--until", type=Moment(), help="Created before (ISO; local time if no zone)."),
        click.option(
            "--status",
            type=StatusFilter(),
            help="A state (prepared, running, stopped, violated) or an end code (-1 stopped, "
            "-2 time up, -3 unallowed motion, -4 source lost, -5 internal error, -6 server "
            "shut down, -7 server stopped unexpectedly).",
        ),
    ]
    for option in reversed(options):  # click applies decorators bottom-up
        command = option(command)
    return command


def filtered_sessions(
    recorder: Any,
    task: str | None,
    capture_id: int | None,
    since: datetime | None,
    until: datetime | None,
    status: str | int | None,
    limit: int | None,
) -> list[Any]:
    """The sessions `session_filters` chose, newest first (`status`: a state or an end code)."""
    return list(
        recorder.list_sessions(
            task=task,
            capture_id=capture_id,
            since=since,
            until=until,
            state=status if isinstance(status, str) else None,
            end_status=status if isinstance(status, int) else None,
            limit=limit,
        )
    )


@click.command()
@click.argument("session_prefix", metavar="[SESSION]", required=False)
@database_url_option
@session_filters
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@click.pass_context
def sessions(
    ctx: click.Context,
    session_prefix: str | None,
    database_url: str | None,
    task: str | None,
    capture_id: int | None,
    since: datetime | None,
    until: datetime | None,
    status: str | int | None,
    limit: int,
    as_json: bool,
) -> None:
    """List stored sessions, newest first.

    With SESSION, only the sessions whose id begins with it (an id or any prefix of one, as
    `khfsm replay` and `khfsm verify` take it); the filters then do not apply.
    """
    from khfsm.store import StoreError

    if session_prefix is not None and any(
        value is not None for value in (task, capture_id, since, until, status)
    ):
        raise click.UsageError("give either SESSION or filters, not both")
    recorder = open_store(ctx, database_url)
    try:
        if session_prefix is not None:
            rows = sessions_by_prefix(recorder, session_prefix, limit)
        else:
            rows = filtered_sessions(recorder, task, capture_id, since, until, status, limit)
        summaries = [summary_of(recorder, row) for row in rows]
        reviews = [reviewed_of(recorder, row) for row in rows]
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    finally:
        recorder.close()
    if as_json:
        listing = [
            _as_dict(r, s) | _reviewed_dict(v)
            for r, s, v in zip(rows, summaries, reviews, strict=True)
        ]
        click.echo(json.dumps(listing, indent=2))
        return
    _print_table(rows, summaries, reviews)


def sessions_by_prefix(recorder: Any, prefix: str, limit: int) -> list[Any]:
    """The stored sessions whose id begins with `prefix`, newest first; `SessionIdError`
    when there is none."""
    from khfsm.cli.ids import SessionIdError

    ids = recorder.session_ids_starting_with(prefix.strip(), limit=limit)
    if not ids:
        raise SessionIdError.unknown(prefix)
    rows = [row for row in map(recorder.session, ids) if row is not None]
    return sorted(rows, key=lambda row: (row.created_at, row.session_id), reverse=True)


def summary_of(recorder: Any, row: Any) -> SessionSummary:
    """The session's summary as the listing shows it: the stored columns, or for a task whose
    result is not its counts (the face check: match / mismatch / no face and the similarity)
    the fold of its stored events, which are few."""
    from khfsm.domain.exercise import Exercise
    from khfsm.registry import UnknownTask, get_task

    try:
        judges_reps = isinstance(get_task(row.task), Exercise)
    except UnknownTask:
        judges_reps = True  # a task no longer installed: its columns are all there is
    if judges_reps or row.end_status is None:
        return row.summary()
    return fold(recorder.events(row.session_id))


def reviewed_of(recorder: Any, row: Any) -> ReviewedResult | None:
    """The reviewed result beside the machine's: only an ended session takes rulings (its
    events but the frames are read, a few dozen rows)."""
    from khfsm.review.decisions import review_of

    return None if row.end_status is None else review_of(recorder, row.session_id).result


def _reviewed_dict(result: ReviewedResult | None) -> dict[str, Any]:
    return {
        "reviewed": result is not None and result.reviewed,
        "reviewed_count": None if result is None else result.count,
        "reviewed_total": None if result is None else result.total,
        "verdict": None if result is None else result.verdict.value,
        "reviewed_result": "" if result is None else result.describe(),
    }


def _reviewed_cell(result: ReviewedResult | None) -> str:
    # "-" rather than "not reviewed": a narrow column keeps the table readable.
    return "-" if result is None or not result.reviewed else result.describe()


def _as_dict(row: Any, summary: SessionSummary) -> dict[str, Any]:
    face = summary.face
    return {
        "session_id": row.session_id,
        "task": row.task,
        "capture_id": row.capture_id,
        "level": row.level,
        "rules_version": row.rules_version,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "state": row.state,
        "end_status": row.end_status,
        "count": row.count,
        "total": row.total,
        "frames": row.frames,
        "events": row.events,
        "outcome": summary.outcome,
        "similarity": None if face is None else face.similarity,
    }


def _print_table(
    rows: list[Any], summaries: list[SessionSummary], reviews: list[ReviewedResult | None]
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} session(s)", title_justify="left")
    # The session id is what `khfsm replay` takes: never truncate it.
    table.add_column(
        "session", no_wrap=True, min_width=max((len(r.session_id) for r in rows), default=7)
    )
    for column in ("task", "lane", "created", "state", "outcome", "count/total", "reviewed"):
        table.add_column(column)
    table.add_column("frames", justify="right")
    for row, summary, review in zip(rows, summaries, reviews, strict=True):
        table.add_row(
            row.session_id,
            row.task,
            str(row.capture_id),
            row.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            row.state,
            summary.outcome,
            f"{row.count}/{row.total}",  # the machine's
            _reviewed_cell(review),  # the board's, beside it
            str(row.frames),
        )
    # Piped into a file or a log, rich would fold the table to 80 columns (200: room for the
    # machine's and the reviewed result side by side).
    Console(width=None if sys.stdout.isatty() else 200).print(table)
