"""`khfsm users`: who may use the HTTP API, their bearer tokens, and the audit log.

Roles: operator (read sessions and evidence, export), reviewer (also decide), admin (also
read the audit log over the API).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from khfsm.cli.db import database_url_option, open_store

ROLES = ("operator", "reviewer", "admin")


def _accounts(ctx: click.Context, database_url: str | None) -> tuple[Any, Any]:
    from khfsm.api.accounts import Accounts

    recorder = open_store(ctx, database_url)
    return recorder, Accounts(recorder.engine)


def _refused(error: Exception) -> click.ClickException:
    return click.ClickException(str(error))


@click.group()
def users() -> None:
    """Manage who may use the HTTP API (/api/v1) and read its audit log."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of prompting.",
)
@database_url_option
@click.pass_context
def add(
    ctx: click.Context, name: str, role: str, password_stdin: bool, database_url: str | None
) -> None:
    """Add a user NAME with a password (asked twice, or read with --password-stdin)."""
    from khfsm.api.accounts import AccountError, Role

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    recorder, accounts = _accounts(ctx, database_url)
    try:
        accounts.add(name, Role(role), password)
    except AccountError as error:
        raise _refused(error) from error
    finally:
        recorder.close()
    click.echo(f"added {name} ({role})")


@users.command("list")
@database_url_option
@click.pass_context
def list_users(ctx: click.Context, database_url: str | None) -> None:
    """List the users, their roles and how many tokens each holds."""
    recorder, accounts = _accounts(ctx, database_url)
    try:
        listing = accounts.listing()
    finally:
        recorder.close()
    if not listing:
        click.echo("no users; add one with `khfsm users add NAME --role admin`")
    for user in listing:
        created = user.created_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{user.name:<24} {user.role.value:<9} since {created}  tokens {user.tokens}")


@users.command("remove")
@click.argument("name")
@database_url_option
@click.pass_context
def remove(ctx: click.Context, name: str, database_url: str | None) -> None:
    """Remove user NAME and their tokens (their audit entries stay)."""
    from khfsm.api.accounts import AccountError

    recorder, accounts = _accounts(ctx, database_url)
    try:
        accounts.remove(name)
    except AccountError as error:
        raise _refused(error) from error
    finally:
        recorder.close()
    click.echo(f"removed {name}")


@users.command("token")
@click.argument("name")
@click.option("--revoke", is_flag=True, help="Revoke all of NAME's tokens instead.")
@database_url_option
@click.pass_context
def token(ctx: click.Context, name: str, revoke: bool, database_url: str | None) -> None:
    """Print a new bearer token for NAME (shown once: only its hash is kept).

    Scripts send it as `Authorization: Bearer <token>`.
    """
    from khfsm.api.accounts import AccountError

    recorder, accounts = _accounts(ctx, database_url)
    try:
        if revoke:
            click.echo(f"revoked {accounts.revoke_tokens(name)} token(s) of {name}", err=True)
            return
        click.echo(accounts.issue_token(name))
    except AccountError as error:
        raise _refused(error) from error
    finally:
        recorder.close()


@users.command("audit")
@click.option("--user", "user_name", help="Only this user's entries.")
@click.option("--session", "session_id", help="Only entries about this session.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@database_url_option
@click.pass_context
def audit(
    ctx: click.Context,
    user_name: str | None,
    session_id: str | None,
    limit: int,
    database_url: str | None,
) -> None:
    """The audit log, newest first: who read which evidence, who decided what, when."""
    from khfsm.api.audit import AuditLog

    recorder = open_store(ctx, database_url)
    try:
        entries = AuditLog(recorder.engine).entries(
            user=user_name, session_id=session_id, limit=limit
        )
    finally:
        recorder.close()
    for entry in entries:
        at = entry.at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        about = entry.session_id or "-"
        click.echo(f"{at}  {entry.user:<16} {entry.action:<15} {about}  {entry.detail}".rstrip())
