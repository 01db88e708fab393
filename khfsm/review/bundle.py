"""The evidence bundle: one zip a dispute file keeps, checkable without the server.

    manifest.json   what is in the bundle: the session, the sha256 and size of every other
                    file, and the head of the hash chain (the last event's hash)
    events.jsonl    the session's events exactly as stored, one JSON object a line:
                    {session_id, seq, type, version, payload, blob, hash, prev_hash,
                    recorded_at}; `payload` is the stored canonical JSON text itself (the hash
                    is over that text), `blob` the keypoints as base64 (or null)
    video.mp4       the evidence video (its sha256 is also in the chain: `SessionEnded`)
    verify.json     the server's verify report at export time (`khfsm.review.verify`)
    README.txt      how to check the bundle

`khfsm bundle verify` (`khfsm.review.bundle_check`) recomputes all of it offline.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import khfsm
from khfsm.domain.codec import EventRecord, decode
from khfsm.domain.events import SessionEnded, SessionPrepared
from khfsm.hashing import file_sha256
from khfsm.review.decisions import SessionNotFound
from khfsm.review.verify import verify_session
from khfsm.server.paths import MediaRoot, PathRefused
from khfsm.store.recorder import EventRecorder, StoredRecord

FORMAT = "khfsm-evidence-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
VERIFY = "verify.json"
README = "README.txt"
VIDEO_STEM = "video"

README_TEXT = """\
Evidence bundle of khfsm session {session_id} ({task}, lane {capture_id}).

Check it, without the server or its database, on any machine with Python 3.11+:

    pip install khfsm        (or: pip install <the khfsm source or wheel>)
    khfsm bundle verify {name}

It recomputes the sha256 of every file against manifest.json, the hash chain over
events.jsonl (each event's hash covers the previous one's), the video's sha256 against the
one sealed into the chain at the session's end, and replays the recorded keypoints through
the counting rules the session was judged by. Any altered file, changed event or removed
event is named. The chain head in manifest.json can also be compared with the server's
(`khfsm verify {session_id}`) or with a copy kept elsewhere: a bundle rewritten consistently
from scratch would have a different head.
"""


@dataclass(frozen=True, slots=True)
class BundleInfo:
    """What `write_bundle` wrote."""

    manifest: dict[str, Any]
    video: Path | None  # the evidence video bundled
    missing: str  # why no video is bundled ("" when it is)


def record_line(row: StoredRecord) -> str:
    """One stored row as an events.jsonl line (keys sorted; `payload` kept as its text)."""
    blob = row.record.blob
    return json.dumps(
        {
            "session_id": row.session_id,
            "seq": row.seq,
            "type": row.record.type,
            "version": row.record.version,
            "payload": row.record.payload,
            "blob": None if blob is None else base64.b64encode(blob).decode("ascii"),
            "hash": row.hash,
            "prev_hash": row.prev_hash,
            "recorded_at": row.recorded_at.isoformat(),
        },
        sort_keys=True,
        ensure_ascii=False,
    )


def parse_line(line: str) -> tuple[str, int, EventRecord, str, str]:
    """(session_id, seq, record, hash, prev_hash) of an events.jsonl line; ValueError if it
    is not one."""
    item = json.loads(line)
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    blob = item.get("blob")
    record = EventRecord(
        type=str(item["type"]),
        version=int(item["version"]),
        payload=str(item["payload"]),
        blob=None if blob is None else base64.b64decode(blob, validate=True),
    )
    return (
        str(item["session_id"]),
        int(item["seq"]),
        record,
        str(item["hash"]),
        str(item["prev_hash"]),
    )


def video_file(media_root: str | Path, video_path: str) -> tuple[Path | None, str]:
    """The session's recorded video (`SessionPrepared.video_path`, absolute or relative to
    the media root) and, when there is none to bundle, why. A path outside the media root is
    never read, whatever the store says (the store is evidence, not a licence to read files)."""
    if not video_path:
        return None, "the session recorded no video"
    try:
        path = MediaRoot.at(media_root).resolve(video_path, "the session's video path")
    except PathRefused as error:
        return None, str(error)
    if not path.is_file():
        return None, f"the video {path} is gone"
    return path, ""


def write_bundle(
    recorder: EventRecorder,
    media_root: str | Path,
    session_id: str,
    out: str | Path | IO[bytes],
) -> BundleInfo:
    """Write the evidence bundle of `session_id` to `out` (a path or a binary file).

    Raises `SessionNotFound`, or the store's errors. A missing video file is not an error
    (the manifest says so and the offline check reports it): the bundle still proves the
    events."""
    rows = recorder.read_records(session_id)
    if not rows:
        raise SessionNotFound(f"no session {session_id} is stored")
    prepared = decode(rows[0].record)
    if not isinstance(prepared, SessionPrepared):
        raise SessionNotFound(f"session {session_id} does not begin with SessionPrepared")
    ended = _recorded_end(rows)
    events_bytes = "".join(record_line(row) + "\n" for row in rows).encode()
    verify_bytes = _json_bytes(verify_session(recorder, session_id))
    name = out.name if hasattr(out, "name") and isinstance(out.name, str) else "bundle.zip"
    readme_bytes = README_TEXT.format(
        session_id=session_id,
        task=prepared.task,
        capture_id=prepared.capture_id,
        name=Path(name).name,
    ).encode()
    video, missing = video_file(media_root, prepared.video_path)
    video_name = VIDEO_STEM + (video.suffix if video is not None else "")
    files: dict[str, dict[str, Any]] = {
        EVENTS: _described(events_bytes),
        VERIFY: _described(verify_bytes),
        README: _described(readme_bytes),
    }
    if video is not None:
        files[video_name] = {"sha256": file_sha256(video), "bytes": video.stat().st_size}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "session_id": session_id,
        "task": prepared.task,
        "capture_id": prepared.capture_id,
        "rules_version": prepared.rules_version,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "khfsm_version": khfsm.__version__,
        "chain": {"head": rows[-1].hash, "events": len(rows)},
        "video": {
            "file": video_name if video is not None else None,
            "recorded_sha256": None if ended is None else ended.video_sha256,
            "recorded_bytes": None if ended is None else ended.video_bytes,
            "missing": missing or None,
        },
        "files": files,
    }
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, _json_bytes(manifest))
        archive.writestr(EVENTS, events_bytes)
        archive.writestr(VERIFY, verify_bytes)
        archive.writestr(README, readme_bytes)
        if video is not None:
            # An MP4 is already compressed: stored as it is, it streams out fast.
            archive.write(video, video_name, compress_type=zipfile.ZIP_STORED)
    return BundleInfo(manifest=manifest, video=video, missing=missing)


def bundle_bytes(recorder: EventRecorder, media_root: str | Path, session_id: str) -> bytes:
    """The bundle in memory (for small sessions and tests; the API streams a file)."""
    buffer = io.BytesIO()
    write_bundle(recorder, media_root, session_id, buffer)
    return buffer.getvalue()


def _recorded_end(rows: list[StoredRecord]) -> SessionEnded | None:
    for row in reversed(rows):
        if row.record.type == SessionEnded.__name__:
            ended = decode(row.record)
            return ended if isinstance(ended, SessionEnded) else None
    return None


def _described(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
