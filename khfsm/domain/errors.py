"""Domain errors: each message is written for the operator who will read it on a tablet."""

from khfsm.errors import KhfsmError


class DomainError(KhfsmError):
    """A request the domain refuses; the message says what to do instead."""


class IllegalTransition(DomainError):
    """A trigger that the session's current state does not allow; nothing was changed."""
