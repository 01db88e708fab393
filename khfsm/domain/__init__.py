"""The domain: events, the session state machine, the exercise interface, replay.

Nothing here performs I/O or reads the clock: it is importable without a database, a camera
or a model, and everything else depends on it, never the other way round.
"""
