"""`khfsm assess VIDEO --exercise pushup`: a whole session on a video file, stored and shown.

Pose runs on every sampled frame (faster than real time on a CPU at 20 fps), the exercise's
rules judge the stream, the events go to the event store like a live session's, and the reps
are printed as a table (or one JSON object with --json). The progress bar goes to stderr so
that stdout stays clean for --json.

The test is the whole file: it ends with time up (-2) at the file's last frame. The same file
used as a camera by `khfsm serve` is judged on exactly these frames at the same Fps; there
the test has a Duration, and a file shorter than it ends the test at its last frame with -4
"video file ... ended" (docs/protocol.md), with the same repetitions.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from khfsm.cli.db import database_url_option, open_store

log = logging.getLogger(__name__)


@click.command()
@click.argument("video", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--exercise",
    "-e",
    "task",
    required=True,
    help="Exercise rules to judge by: pushup, situp, pullup, squat, armhang (or a plug-in's).",
)
@click.option(
    "--level",
    type=click.IntRange(1, 5),
    default=5,
    show_default=True,
    help="Grading level: 5 is the standard exam, lower is more lenient.",
)
@click.option(
    "--fps",
    type=click.FloatRange(min=1.0, max=240.0),
    default=20.0,
    show_default=True,
    help="Assessment frame rate: frames are taken from the video's timeline at this rate.",
)
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.pass_context
def assess(
    ctx: click.Context,
    video: str,
    task: str,
    level: int,
    fps: float,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Assess VIDEO: pose -> rules -> store; print the reps and the final count."""
    from rich.console import Console

    from khfsm.offline.assess import assess_video
    from khfsm.offline.probe import AssessError, probe_video
    from khfsm.registry import get_exercise

    err = Console(stderr=True)
    exercise = get_exercise(exercise_named(task))
    try:
        probe_video(video)
    except AssessError as error:
        raise click.ClickException(str(error)) from error
    recorder = open_store(ctx, database_url)

    try:
        with _progress_bar(err, video) as advance:
            session_id, summary = assess_video(
                video, exercise.task, level, fps, recorder, progress=advance
            )
    except click.ClickException:
        raise
    except AssessError as error:
        raise click.ClickException(str(error)) from error
    except Exception as error:  # a bad model file, a store outage ...: words, not a traceback
        log.debug("assessment of %s failed", video, exc_info=True)
        raise click.ClickException(f"assessment of {video} failed: {error}") from error

    report = _report(session_id, summary, exercise, video, level, fps)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        _print_table(report)


def exercise_named(task: str) -> str:
    """`task` if it is an installed exercise; else a `ClickException` saying that assess
    runs exercises only, and which."""
    from khfsm.domain.face import FACE_CHECK
    from khfsm.registry import installed_exercises, installed_tasks

    exercises = sorted(installed_exercises())
    if task in exercises:
        return task
    if task in installed_tasks():
        what = f"{task} is not an exercise (it judges no repetitions)"
        if task == FACE_CHECK.task:
            what += "; a face is checked with `khfsm face verify`"
    else:
        what = f"unknown exercise {task!r}"
    raise click.ClickException(
        f"{what}. khfsm assess runs exercises only: {', '.join(exercises) or 'none installed'}"
    )


@contextmanager
def _progress_bar(console: Any, video: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr; yields the (done, expected) callback."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]pose[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    task = progress.add_task(video, total=None)

    def advance(done: int, expected: int) -> None:
        progress.update(task, completed=done, total=max(expected, done))

    with progress:
        yield advance


def _report(
    session_id: str, summary: Any, exercise: Any, video: str, level: int, fps: float
) -> dict[str, Any]:
    ended = summary.end
    violation = summary.violation
    return {
        "session": session_id,
        "video": video,
        "task": exercise.task,
        "rules_version": exercise.rules_version,
        "level": level,
        "fps": fps,
        "frames": summary.frames,
        "total": summary.total,
        "count": summary.count,
        "end_status": summary.end_status,
        "end_message": ended.message if ended is not None else "",
        "violation": None
        if violation is None
        else {
            "code": violation.code,
            "message": violation.message,
            "time": round(violation.frame / fps, 1),
            "measurements": dict(violation.measurements),
        },
        "faults": {str(code): n for code, n in sorted(summary.faults.items())},
        "reps": [
            {
                "rep": rep.rep,
                "status": list(rep.status),
                "time": list(rep.time),
                "frames": [rep.start_frame, rep.end_frame],
                "faults": [exercise.faults.get(code, "") for code in rep.status if code != 0],
                "measurements": dict(rep.measurements),
            }
            for rep in summary.reps
        ],
    }


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    # Piped into a file or a log, rich would fold the table to 80 columns.
    out = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"{report['task']} (level {report['level']}) · {report['video']}")
    table.add_column("rep", justify="right")
    table.add_column("time (s)")
    table.add_column("status")
    table.add_column("measurements")
    for rep in report["reps"]:
        status = ", ".join(str(code) for code in rep["status"])
        if rep["faults"]:
            status += "\n" + "\n".join(rep["faults"])
        style = "green" if rep["status"] == [0] else "red"
        measurements = "  ".join(f"{k}={v:g}" for k, v in rep["measurements"].items())
        start, end = rep["time"]
        table.add_row(
            str(rep["rep"]), f"{start:.1f}–{end:.1f}", f"[{style}]{status}[/{style}]", measurements
        )
    out.print(table)
    violation = report["violation"]
    if violation is not None:
        out.print(
            f"[bold red]unallowed motion[/bold red] at {violation['time']:.1f} s: "
            f"{violation['message']} ({violation['code']})"
        )
    out.print(
        f"count [bold]{report['count']}[/bold] of {report['total']} attempts · "
        f"{report['end_message']} ({report['end_status']}) · session {report['session']}"
    )
