"""The evidence bundle of a real session: exported, verified offline (no database), and
rejected with the culprit named when a byte of the video, an event, or a whole event is
changed or removed. A row changed by SQL in the store is caught by `khfsm verify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sqlalchemy
from click.testing import CliRunner, Result

from khfsm.cli.main import cli
from khfsm.domain.events import SessionPrepared
from khfsm.review.bundle import EVENTS, MANIFEST, write_bundle
from khfsm.review.bundle_check import verify_bundle
from khfsm.review.decisions import record_decision
from khfsm.review.verify import verify_session
from tests.review.conftest import Store

VIDEO = "video.mp4"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def exported(store: Store, tmp_path: Path) -> Path:
    record_decision(store.recorder, store.session_id, "judge", 1, "overturn", "too shallow")
    out = tmp_path / "out" / "bundle.zip"
    out.parent.mkdir()
    result = run(
        "bundle",
        "export",
        store.session_id[:8],  # a unique prefix is enough, as for replay and verify
        "-o",
        str(out),
        "--database-url",
        store.url,
        "--media-root",
        str(store.media),
    )
    assert result.exit_code == 0, result.output
    assert "chain head" in result.output and store.session_id in result.output
    return out


def test_export_of_an_unknown_session_says_so(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "none.zip"
    args = ["-o", str(out), "--database-url", store.url, "--media-root", str(store.media)]
    result = CliRunner().invoke(cli, ["bundle", "export", "zz", *args])
    assert result.exit_code == 2, result.output
    assert "no session zz is stored, nor one whose id starts with it" in result.output
    assert not out.exists()


def rewritten(source: Path, target: Path, name: str, change: object) -> Path:
    """A copy of the bundle with member `name` passed through `change` (bytes -> bytes)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == name:
                data = change(data)  # type: ignore[operator]
            copy.writestr(info, data)
    return target


def findings(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if "ALTERED" in line]


def test_an_exported_bundle_verifies_without_server_or_database(
    exported: Path, store: Store
) -> None:
    store.recorder.close()
    for path in store.database.parent.glob("khfsm.sqlite*"):
        path.unlink()  # nothing but the zip is left
    result = run("bundle", "verify", str(exported))
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("intact")
    # As an outsider runs it: the installed command, an empty home, no khfsm settings at all.
    home = exported.parent / "outsider"
    home.mkdir()
    outsider = subprocess.run(
        [str(Path(sys.executable).parent / "khfsm"), "bundle", "verify", str(exported)],
        cwd=home,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outsider.returncode == 0, outsider.stdout + outsider.stderr
    assert outsider.stdout.rstrip().endswith("intact")
    assert not (home / ".local" / "share" / "khfsm").exists()  # no store was created
    assert f"{VIDEO}: sha256 matches the one sealed in the chain" in result.output
    assert "replay under pushup-" in result.output and "identical" in result.output

    with zipfile.ZipFile(exported) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read(MANIFEST))
        lines = archive.read(EVENTS).decode().splitlines()
        verify = json.loads(archive.read("verify.json"))
    assert names == {MANIFEST, EVENTS, VIDEO, "verify.json", "README.txt"}
    assert manifest["chain"]["events"] == len(lines)
    assert manifest["chain"]["head"] == json.loads(lines[-1])["hash"]
    assert json.loads(lines[-1])["type"] == "ReviewDecided"  # rulings travel in the chain
    assert set(manifest["files"]) == names - {MANIFEST}
    assert verify["intact"] is True and verify["chain"]["ok"] and verify["replay"]["identical"]


def test_one_changed_byte_in_the_video_is_named(exported: Path, tmp_path: Path) -> None:
    def flip(data: bytes) -> bytes:
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]

    tampered = rewritten(exported, tmp_path / "video.zip", VIDEO, flip)
    result = run("bundle", "verify", str(tampered))
    assert result.exit_code == 1
    assert any(f"ALTERED: {VIDEO}: altered" in line for line in findings(result)), result.output
    assert any(f"{VIDEO}: is not the recorded video" in line for line in findings(result))
    assert "NOT INTACT" in result.output


def test_a_byte_changed_inside_the_zip_itself_is_named(exported: Path, tmp_path: Path) -> None:
    data = bytearray(exported.read_bytes())
    with zipfile.ZipFile(exported) as archive:
        info = archive.getinfo(VIDEO)
    # The local header is 30 bytes plus the name and extra field; the video follows, stored.
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 1000
    data[offset] ^= 0xFF
    tampered = tmp_path / "raw.zip"
    tampered.write_bytes(bytes(data))
    report = verify_bundle(tampered)
    assert not report.intact
    assert [f.where for f in report.findings] == [VIDEO]


def test_one_changed_event_is_named(exported: Path, tmp_path: Path) -> None:
    def recount(data: bytes) -> bytes:
        lines = data.decode().splitlines()
        for index, line in enumerate(lines):
            item = json.loads(line)
            if item["type"] == "RepCounted":
                payload = json.loads(item["payload"])
                payload["status"] = [0] if payload["status"] != [0] else [311]
                item["payload"] = json.dumps(payload, sort_keys=True, separators=(",", ":"))
                lines[index] = json.dumps(item, sort_keys=True)
                return ("\n".join(lines) + "\n").encode()
        raise AssertionError("no repetition in the bundle")

    tampered = rewritten(exported, tmp_path / "event.zip", EVENTS, recount)
    report = verify_bundle(tampered)
    first_rep = next(
        json.loads(line)["seq"]
        for line in zipfile.ZipFile(exported).read(EVENTS).decode().splitlines()
        if json.loads(line)["type"] == "RepCounted"
    )
    wheres = [f.where for f in report.findings]
    assert wheres == [EVENTS, f"event {first_rep} (RepCounted)"], report.findings
    assert "changed" in report.findings[1].problem
    result = run("bundle", "verify", str(tampered))
    assert result.exit_code == 1 and f"event {first_rep} (RepCounted): changed" in result.output


@pytest.mark.parametrize("which", ["middle", "last"])
def test_one_removed_event_is_named(exported: Path, tmp_path: Path, which: str) -> None:
    lines = zipfile.ZipFile(exported).read(EVENTS).decode().splitlines()
    gone = len(lines) // 2 if which == "middle" else len(lines) - 1

    def remove(data: bytes) -> bytes:
        kept = [line for i, line in enumerate(data.decode().splitlines()) if i != gone]
        return ("\n".join(kept) + "\n").encode()

    tampered = rewritten(exported, tmp_path / "removed.zip", EVENTS, remove)
    report = verify_bundle(tampered)
    assert [f.where for f in report.findings] == [EVENTS, f"event {gone}"], report.findings
    assert "removed" in report.findings[1].problem
    result = run("bundle", "verify", str(tampered))
    assert result.exit_code == 1 and f"ALTERED: event {gone}: removed" in result.output


def test_not_a_bundle_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    result = run("bundle", "verify", str(junk))
    assert result.exit_code == 2 and "not a readable zip" in result.output


def test_a_row_changed_by_sql_is_detected_by_verify(store: Store, tmp_path: Path) -> None:
    recorder, session = store.recorder, store.session_id
    assert verify_session(recorder, session)["intact"] is True
    seq = next(r.seq for r in recorder.read_records(session) if r.record.type == "RepCounted")
    with recorder.engine.begin() as connection:
        connection.execute(
            sqlalchemy.text(
                "UPDATE events SET payload = replace(payload, :old, :new) "
                "WHERE session_id = :s AND seq = :q"
            ),
            {"old": '"count":', "new": '"count":1', "s": session, "q": seq},
        )
    report = verify_session(recorder, session)
    assert report["intact"] is False
    assert report["chain"]["first_bad_seq"] == seq and "altered" in report["chain"]["detail"]
    result = run("verify", session, "--database-url", store.url)
    assert result.exit_code == 1 and f"BROKEN at event {seq}" in result.output

    # A bundle exported from the altered store carries the evidence of it, too.
    out = tmp_path / "altered.zip"
    write_bundle(recorder, store.media, session, out)
    bundled = verify_bundle(out)
    assert [f.where for f in bundled.findings] == [f"event {seq} (RepCounted)"]


def test_a_missing_or_outside_video_is_not_bundled_and_the_check_says_so(
    store: Store, tmp_path: Path
) -> None:
    recorder, session = store.recorder, store.session_id
    prepared = recorder.events(session)[0]
    assert isinstance(prepared, SessionPrepared)
    # The media root the bundle is exported from does not hold the video any more.
    elsewhere = tmp_path / "other-media"
    elsewhere.mkdir()
    out = tmp_path / "novideo.zip"
    info = write_bundle(recorder, elsewhere, session, out)
    assert info.video is None and "outside the media root" in info.missing
    report = verify_bundle(out)
    assert [f.where for f in report.findings] == ["video"]
    assert "outside the media root" in report.findings[0].problem and not report.intact
    assert report.replay is not None and report.replay["identical"] is True  # events still prove
