"""The media root's boundary: containment by path components (never by string prefix) and
by where a file really is (a symbolic link out of the root is refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from khfsm.server.paths import MediaRoot, PathRefused, SourceKind, parse_source, redact

SCHEMES = ("rtsp", "file")


@pytest.fixture
def media(tmp_path: Path) -> MediaRoot:
    (tmp_path / "media" / "files").mkdir(parents=True)
    return MediaRoot.at(tmp_path / "media")


@pytest.mark.parametrize("sibling", ["-evil/x.mp4", "2/etc/passwd", "_old/files/x.mp4", ".mp4"])
def test_sibling_whose_name_starts_with_the_root_is_outside(media: MediaRoot, sibling: str) -> None:
    outside = f"{media.root}{sibling}"
    with pytest.raises(PathRefused, match="outside the media root"):
        media.resolve(outside, "ModelPath")
    with pytest.raises(PathRefused, match="outside the media root"):
        parse_source(outside, media, SCHEMES)
    with pytest.raises(PathRefused, match="outside the media root"):
        parse_source(f"file://{outside}", media, SCHEMES)


def test_the_root_and_what_lies_under_it_are_inside(media: MediaRoot) -> None:
    assert media.resolve(f"{media.root}/files/x.mp4", "ModelPath") == media.root / "files/x.mp4"
    assert media.resolve(f"{media.root}//files/./x.mp4", "ModelPath") == media.root / "files/x.mp4"
    assert media.resolve("files/x.mp4", "ModelPath") == media.root / "files/x.mp4"
    assert media.resolve("./x.mp4", "ModelPath") == media.root / "x.mp4"


def test_parent_of_the_root_and_root_spelled_as_prefix_are_outside(media: MediaRoot) -> None:
    for outside in (str(media.root.parent), f"{media.root.parent}/x.mp4", "/etc/passwd"):
        with pytest.raises(PathRefused, match="outside the media root"):
            media.resolve(outside, "ModelPath")


def test_file_linked_out_of_the_root_is_refused(media: MediaRoot, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for tablets")
    (media.root / "files" / "clip.mp4").symlink_to(secret)
    for spelled in ("files/clip.mp4", f"{media.root}/files/clip.mp4"):
        with pytest.raises(PathRefused, match="through a symbolic link"):
            media.resolve(spelled, "CapturePath")
    with pytest.raises(PathRefused, match="through a symbolic link"):
        parse_source("files/clip.mp4", media, SCHEMES)


def test_directory_linked_out_of_the_root_is_refused_for_new_files(
    media: MediaRoot, tmp_path: Path
) -> None:
    # A video is written to a path that does not exist yet: the link is on the way to it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (media.root / "video").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PathRefused, match="through a symbolic link"):
        media.resolve("video/new/x.mp4", "ModelPath")
    assert not (elsewhere / "new").exists()


def test_link_that_stays_inside_the_root_is_honoured(media: MediaRoot) -> None:
    (media.root / "files" / "real.mp4").write_bytes(b"")
    (media.root / "alias.mp4").symlink_to(media.root / "files" / "real.mp4")
    assert media.resolve("alias.mp4", "CapturePath") == media.root / "alias.mp4"


def test_media_root_that_is_itself_a_link_works(tmp_path: Path) -> None:
    real = tmp_path / "disk2" / "tnkhxt"
    (real / "files").mkdir(parents=True)
    (tmp_path / "tnkhxt").symlink_to(real, target_is_directory=True)
    media = MediaRoot.at(tmp_path / "tnkhxt")
    path = media.resolve(f"{tmp_path}/tnkhxt/files/x.mp4", "ModelPath")
    assert path == tmp_path / "tnkhxt" / "files" / "x.mp4"


# -- what mutation testing showed unchecked: redaction edge cases, what a source resolves to,
# -- and errors that name the request field ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:p@ss@cam:554/x", "rtsp://admin:***@cam:554/x"),  # '@' in the password
        ("rtsp://admin:pw@[bad/x", "rtsp://admin:***@[bad/x"),  # unparsable: masked as text
        ("rtsp://a:b:c@[bad/x", "rtsp://a:***@[bad/x"),
        ("rtsp://[bad", "rtsp://[bad"),
        ("rtsp://user@cam/x", "rtsp://user@cam/x"),  # a user name alone is no secret
        ("rtsp://user:@cam/x", "rtsp://user:***@cam/x"),
        ("http://cam/s?token=abc&x=1#frag", "http://cam/s?token=***&x=1#***"),  # a fragment too
    ],
)
def test_redact_edge_cases(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_sources_resolve_to_what_opencv_opens(media: MediaRoot) -> None:
    clip = media.root / "files" / "clip.mp4"
    for raw in ("files/clip.mp4", f"{clip}", f"file://{clip}"):
        source = parse_source(raw, media, SCHEMES)
        assert (source.kind, source.target, source.display) == (
            SourceKind.FILE,
            str(clip),
            str(clip),
        )
        assert source.path == clip and not source.live
    url = "rtsp://admin:secret@cam:554/lane"
    source = parse_source(url, media, SCHEMES)
    assert (source.kind, source.target, source.display) == (
        SourceKind.URL,
        url,
        "rtsp://admin:***@cam:554/lane",
    )
    assert source.live and source.path is None
    for raw, index in (("device:/2", 2), ("device:3", 3), ("4", 4), (5, 5)):
        source = parse_source(raw, media, ("device",))
        assert (source.kind, source.target, source.display) == (
            SourceKind.DEVICE,
            index,
            f"device:{index}",
        )


@pytest.mark.parametrize(
    ("raw", "schemes", "message"),
    [
        ("", SCHEMES, "PhotoPath is empty; name a file under the media root"),
        ("a\0b", SCHEMES, "PhotoPath contains a NUL character"),
        ("../x", SCHEMES, "PhotoPath '../x' contains '..'"),
        ("/etc/passwd", SCHEMES, "PhotoPath '/etc/passwd' is outside the media root"),
        ("device:x", ("device",), "PhotoPath 'device:x': a device is named by its index"),
        ("device:1", SCHEMES, "PhotoPath names local camera 1, but devices are not allowed"),
        (-1, ("device",), "PhotoPath: a device index is 0 to 255"),
        ("ftp://h/x", SCHEMES, "PhotoPath scheme 'ftp' is not allowed on this server; allowed: "
         "file, rtsp"),
        ("ftp://h/x", (), "allowed: none"),
        ("rtsp:///x", SCHEMES, "PhotoPath 'rtsp:///x' has no host"),
        ("x.jpg", ("rtsp",), "PhotoPath names a file, but files are not allowed as cameras"),
    ],
)  # fmt: skip
def test_refusals_name_the_request_field(
    media: MediaRoot, raw: str | int, schemes: tuple[str, ...], message: str
) -> None:
    with pytest.raises(PathRefused) as refused:
        parse_source(raw, media, schemes, field="PhotoPath")
    assert message in str(refused.value)


def test_refusals_name_capture_path_by_default(media: MediaRoot) -> None:
    with pytest.raises(PathRefused, match=r"^CapturePath '\.\./x' contains"):
        parse_source("../x", media, SCHEMES)


def test_the_media_root_itself_spelled_absolute_is_inside(media: MediaRoot) -> None:
    assert media.resolve(str(media.root), "ModelPath") == media.root
