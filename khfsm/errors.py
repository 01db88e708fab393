"""The root of every error khfsm raises on purpose.

Each subclass's message is written for the person who will read it (an operator on a tablet,
an administrator at a console) and says what is wrong and what to do; an integrator catches
`KhfsmError` to tell these from bugs. Subclasses that were once a `ValueError` or a
`RuntimeError` stay one too, so existing `except` clauses keep working.
"""


class KhfsmError(Exception):
    """An error khfsm raises on purpose, worded for the person who reads it."""
