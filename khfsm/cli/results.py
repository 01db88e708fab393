"""`khfsm results`: an exam day's results, one row per session, as CSV or JSON.

What the exam's records system imports: candidate, task, level, the machine's count and
total, the end status, the reviewed result beside it, the session id and a link to the
evidence (set `public_url` so that the link is absolute).
"""

from __future__ import annotations

from datetime import date
from typing import TextIO

import click

from khfsm.cli.db import database_url_option, open_store


@click.command()
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    required=True,
    help="The exam day, YYYY-MM-DD (in the server's local time zone).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
)
@click.option("--all", "include_open", is_flag=True, help="Also sessions that have not ended yet.")
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Write here instead of to standard output.",
)
@database_url_option
@click.pass_context
def results(
    ctx: click.Context,
    day: date,
    fmt: str,
    include_open: bool,
    output: TextIO,
    database_url: str | None,
) -> None:
    """Every session of an exam day with its machine and reviewed result."""
    from khfsm.review.results import day_results, to_csv, to_json
    from khfsm.settings import load_settings
    from khfsm.store import StoreError

    root = ctx.find_root().obj or {}
    settings = load_settings(root.get("config_file"))
    recorder = open_store(ctx, database_url)
    try:
        rows = day_results(
            recorder,
            day.date() if hasattr(day, "date") else day,
            public_url=settings.public_url,
            evidence_url=settings.evidence_url,
            ended_only=not include_open,
        )
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    finally:
        recorder.close()
    output.write(to_csv(rows) if fmt == "csv" else to_json(rows) + "\n")
