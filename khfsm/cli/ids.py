"""Session ids on the command line: a unique prefix is enough, as with git's commits."""

from __future__ import annotations

from typing import Any

import click

# How many of an ambiguous prefix's sessions the error names.
SHOWN = 5


class SessionIdError(click.ClickException):
    """No stored session, or more than one, has the id the operator typed (exit code 2, as
    for every check `khfsm replay`/`verify` cannot make)."""

    exit_code = 2

    @classmethod
    def unknown(cls, prefix: str) -> SessionIdError:
        return cls(
            f"no session {prefix} is stored, nor one whose id starts with it; "
            "`khfsm sessions` lists them"
        )


def matching_ids(recorder: Any, prefix: str) -> list[str]:
    """The stored ids `prefix` may stand for: itself when stored, else every id it begins
    (up to one more than `SHOWN`, enough to say that there are more)."""
    from khfsm.store import StoreError

    try:
        if recorder.session(prefix) is not None:
            return [prefix]
        ids: list[str] = recorder.session_ids_starting_with(prefix, limit=SHOWN + 1)
    except StoreError as error:
        raise SessionIdError(str(error)) from error
    return ids


def resolve_session_id(recorder: Any, prefix: str) -> str:
    """The one stored session whose id is or begins with `prefix`; `SessionIdError` saying
    which when none or several do."""
    ids = matching_ids(recorder, prefix.strip())
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise SessionIdError.unknown(prefix)
    many = f"more than {SHOWN}" if len(ids) > SHOWN else str(len(ids))
    raise SessionIdError(
        f"session id prefix {prefix!r} is ambiguous: {many} sessions begin with it "
        f"({', '.join(ids[:SHOWN])}); type more characters"
    )
