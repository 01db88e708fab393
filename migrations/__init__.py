"""Alembic migrations of the event store (`khfsm db upgrade`; see khfsm.store.migrate)."""
