"""Checking an evidence bundle offline: no server, no database, only this package.

In order, each finding naming the file or the event it is about:

1. every file the manifest lists is there, with its sha256 and size; nothing unlisted is;
2. events.jsonl: sequence numbers from 0 without a gap, each event linked to the previous
   one's hash and hashing to its own (`khfsm.domain.codec.chain_hash`, as the store does),
   and the last hash equal to the manifest's chain head over as many events;
3. the video's sha256 equals the one sealed into the chain by `SessionEnded`;
4. a replay of the recorded inputs under the rules version the session was judged by, when
   that version is installed (otherwise reported as not made, which is not a failure).

A bundle is intact when 1–3 find nothing and the replay, if made, is identical.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from khfsm.domain.codec import GENESIS_HASH, CodecError, EventRecord, chain_hash, decode
from khfsm.domain.events import Event, SessionEnded
from khfsm.errors import KhfsmError
from khfsm.review.bundle import EVENTS, FORMAT, MANIFEST, parse_line
from khfsm.review.verify import replay_dict


@dataclass(frozen=True, slots=True)
class Finding:
    where: str  # a file name ("video.mp4") or an event ("event 57 (RepCounted)")
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass(slots=True)
class BundleReport:
    session_id: str | None = None
    findings: list[Finding] = field(default_factory=list)
    events: int = 0
    chain_head: str | None = None
    replay: dict[str, Any] | None = None  # `khfsm.review.verify.replay_dict`'s shape
    checked: list[str] = field(default_factory=list)  # what passed, in words

    @property
    def intact(self) -> bool:
        replay_ok = self.replay is None or self.replay["identical"] is not False
        return not self.findings and replay_ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "session_id": self.session_id,
            "events": self.events,
            "chain_head": self.chain_head,
            "findings": [{"where": f.where, "problem": f.problem} for f in self.findings],
            "checked": self.checked,
            "replay": self.replay,
        }


class BundleUnreadable(KhfsmError):
    """Not a zip, or no manifest: nothing in it can be checked."""


def verify_bundle(source: str | Path | IO[bytes], *, replay: bool = True) -> BundleReport:
    """Check the bundle at `source` (see the module docstring). Raises `BundleUnreadable`
    only when it is no bundle at all; every other problem is a finding in the report."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as error:
        raise BundleUnreadable(f"not a readable zip file: {error}") from error
    with archive:
        report = BundleReport()
        manifest = _manifest(archive)
        if manifest.get("format") != FORMAT:
            report.findings.append(
                Finding(MANIFEST, f"format is {manifest.get('format')!r}, not {FORMAT!r}")
            )
        report.session_id = str(manifest.get("session_id"))
        _check_files(archive, manifest, report)
        events = _check_chain(archive, manifest, report)
        _check_video(archive, manifest, events, report)
        if replay and events is not None:
            report.replay = replay_dict(events)
    return report


def _manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except zipfile.BadZipFile as error:
        raise BundleUnreadable(f"{MANIFEST} was altered inside the zip: {error}") from error
    except KeyError:
        raise BundleUnreadable(f"the zip holds no {MANIFEST}: it is not a khfsm bundle") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BundleUnreadable(f"{MANIFEST} is not JSON: {error}") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BundleUnreadable(f"{MANIFEST} lists no files: it is not a khfsm bundle")
    return manifest


def _check_files(archive: zipfile.ZipFile, manifest: dict[str, Any], report: BundleReport) -> None:
    listed: dict[str, Any] = manifest["files"]
    present = set(archive.namelist()) - {MANIFEST}
    for name in sorted(present - set(listed)):
        report.findings.append(Finding(name, "is in the bundle but not in the manifest"))
    for name, expected in sorted(listed.items()):
        if name not in present:
            report.findings.append(Finding(name, "is listed in the manifest but missing"))
            continue
        measured = _sha256_of(archive, name, report)
        if measured is None:
            continue
        digest, size = measured
        if digest != expected.get("sha256") or size != expected.get("bytes"):
            report.findings.append(
                Finding(
                    name,
                    f"altered: its sha256 is {digest[:16]}… ({size} bytes), the manifest "
                    f"records {str(expected.get('sha256'))[:16]}… ({expected.get('bytes')} bytes)",
                )
            )
        else:
            report.checked.append(f"{name}: sha256 matches the manifest")


def _check_chain(
    archive: zipfile.ZipFile, manifest: dict[str, Any], report: BundleReport
) -> list[Event] | None:
    """The hash chain over events.jsonl; the decoded events when they decode."""
    try:
        text = archive.read(EVENTS).decode()
    except KeyError:
        report.findings.append(Finding(EVENTS, "missing: no event can be checked"))
        return None
    except (zipfile.BadZipFile, UnicodeDecodeError) as error:
        report.findings.append(Finding(EVENTS, f"altered: it cannot be read ({error})"))
        return None
    session_id = str(manifest.get("session_id"))
    previous = GENESIS_HASH
    expected_seq = 0
    records: list[EventRecord] = []
    broken = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            owner, seq, record, digest, prev_hash = parse_line(line)
        except (ValueError, KeyError, TypeError) as error:
            report.findings.append(Finding(f"{EVENTS} line {number}", f"unreadable: {error}"))
            broken = True
            break
        where = f"event {seq} ({record.type})"
        if owner != session_id:
            report.findings.append(
                Finding(where, f"belongs to session {owner}, not to {session_id}")
            )
            broken = True
        if seq != expected_seq:
            missing = (
                f"event {expected_seq}"
                if seq == expected_seq + 1
                else f"events {expected_seq}..{seq - 1}"
            )
            report.findings.append(
                Finding(
                    f"event {expected_seq}",
                    f"removed: {missing} missing before {where}"
                    if seq > expected_seq
                    else f"out of order: {where} follows event {expected_seq - 1}",
                )
            )
            broken = True
            break
        if prev_hash != previous:
            report.findings.append(
                Finding(where, "does not link to the previous event: one was removed or rewritten")
            )
            broken = True
            break
        computed = chain_hash(previous, session_id, seq, record)
        if computed != digest:
            report.findings.append(
                Finding(
                    where,
                    f"changed: its content hashes to {computed[:16]}…, the chain recorded "
                    f"{digest[:16]}…",
                )
            )
            broken = True
            break
        records.append(record)
        previous = digest
        expected_seq += 1
    report.events = len(records)
    report.chain_head = previous if records else None
    chain = manifest.get("chain") or {}
    if not broken:
        recorded = chain.get("events")
        if recorded != len(records):
            report.findings.append(
                Finding(
                    f"event {len(records)}",
                    f"removed: the manifest records {recorded} events, {EVENTS} holds "
                    f"{len(records)} (event {len(records)} onwards is missing)",
                )
            )
        elif chain.get("head") != previous:
            report.findings.append(
                Finding(MANIFEST, f"chain head {chain.get('head')} is not the events' {previous}")
            )
        else:
            report.checked.append(f"hash chain intact over {len(records)} events, head {previous}")
    if broken:
        return None
    try:
        return [decode(record) for record in records]
    except CodecError as error:
        report.findings.append(Finding(EVENTS, f"an event does not decode: {error}"))
        return None


def _check_video(
    archive: zipfile.ZipFile,
    manifest: dict[str, Any],
    events: list[Event] | None,
    report: BundleReport,
) -> None:
    video = manifest.get("video") or {}
    name = video.get("file")
    ended = next((e for e in reversed(events or []) if isinstance(e, SessionEnded)), None)
    sealed = ended.video_sha256 if ended is not None else None
    if not name:
        if sealed:
            why = video.get("missing") or "not bundled"
            report.findings.append(
                Finding("video", f"the session recorded a video but the bundle holds none ({why})")
            )
        return
    if name not in archive.namelist():
        return  # already reported as missing by the manifest check
    if events is None:
        return  # the chain is broken: the sealed hash cannot be trusted to compare with
    measured = _sha256_of(archive, name, None)
    if measured is None:
        return  # unreadable: the manifest check has named it
    digest, size = measured
    if sealed is None:
        report.findings.append(Finding(name, "the session's end seals no video hash to check"))
    elif digest != sealed:
        report.findings.append(
            Finding(
                name,
                f"is not the recorded video: its sha256 is {digest[:16]}…, the session sealed "
                f"{sealed[:16]}… into its hash chain",
            )
        )
    else:
        report.checked.append(f"{name}: sha256 matches the one sealed in the chain ({size} bytes)")


def _sha256_of(
    archive: zipfile.ZipFile, name: str, report: BundleReport | None
) -> tuple[str, int] | None:
    """The member's sha256 and size; None (and a finding) when the zip's own CRC shows that
    its bytes were changed inside the archive."""
    digest = hashlib.sha256()
    size = 0
    try:
        with archive.open(name) as member:
            while chunk := member.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        if report is not None:
            report.findings.append(Finding(name, f"altered inside the zip: {error}"))
        return None
    return digest.hexdigest(), size
