"""Events to storable records and back, and the hash chain over them.

A record is the event's type name, its schema version, its fields as canonical JSON text
(sorted keys, no whitespace, no NaN) and its keypoints as raw float32 bytes. The hash of each
event covers its session, its sequence number, the record and the previous event's hash, so
editing, dropping or reordering any stored row breaks the chain from that row on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from khfsm.domain.events import EVENT_TYPES, Event, FrameObserved
from khfsm.domain.pose import LANDMARK_COLUMNS, NUM_LANDMARKS
from khfsm.errors import KhfsmError

GENESIS_HASH = "0" * 64
_KEYPOINT_BYTES = NUM_LANDMARKS * LANDMARK_COLUMNS * 4


class CodecError(KhfsmError, ValueError):
    """A stored record that cannot be turned back into an event."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    type: str
    version: int
    payload: str  # canonical JSON
    blob: bytes | None  # FrameObserved: keypoints (33x5 float32) followed by world (33x3)


def canonical_json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def encode(event: Event) -> EventRecord:
    cls = type(event)
    if cls.__name__ not in EVENT_TYPES:
        raise CodecError(f"unknown event type {cls.__name__}")
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    blob: bytes | None = None
    if isinstance(event, FrameObserved):
        keypoints, world = fields.pop("keypoints"), fields.pop("world")
        if keypoints is not None:
            blob = keypoints + (world or b"")
        if fields["pts"] is None:  # as stored before pts existed: the same bytes, same hash
            del fields["pts"]
    payload = {name: _jsonable(value) for name, value in fields.items()}
    try:
        text = canonical_json(payload)
    except ValueError as error:
        raise CodecError(f"{cls.__name__} has a value JSON cannot hold exactly: {error}") from error
    return EventRecord(type=cls.__name__, version=cls.SCHEMA_VERSION, payload=text, blob=blob)


def decode(record: EventRecord) -> Event:
    cls = EVENT_TYPES.get(record.type)
    if cls is None:
        raise CodecError(f"unknown event type {record.type!r}")
    if record.version > cls.SCHEMA_VERSION:
        raise CodecError(
            f"{record.type} schema version {record.version} is newer than this engine "
            f"understands ({cls.SCHEMA_VERSION}); upgrade khfsm"
        )
    try:
        payload: dict[str, Any] = json.loads(record.payload)
    except json.JSONDecodeError as error:
        raise CodecError(f"{record.type} payload is not JSON: {error}") from error
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, value in payload.items():
        field = known.get(name)
        if field is None:
            continue  # a field dropped in a later schema; old data stays readable
        annotation = str(field.type)
        kwargs[name] = _tuple_of(value) if annotation.startswith("tuple") else value
    if cls is FrameObserved:
        blob = record.blob
        if blob is None:
            kwargs["keypoints"], kwargs["world"] = None, None
        else:
            kwargs["keypoints"] = bytes(blob[:_KEYPOINT_BYTES])
            kwargs["world"] = bytes(blob[_KEYPOINT_BYTES:]) or None
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise CodecError(f"{record.type} record does not fit its schema: {error}") from error


def chain_hash(previous: str, session_id: str, seq: int, record: EventRecord) -> str:
    digest = hashlib.sha256()
    for part in (previous, session_id, str(seq), record.type, str(record.version), record.payload):
        digest.update(part.encode())
        digest.update(b"\x1f")
    digest.update(record.blob or b"")
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _tuple_of(value: Any) -> Any:
    return tuple(_tuple_of(v) for v in value) if isinstance(value, list) else value
