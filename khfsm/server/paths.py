"""File paths and camera URLs that arrive from the network, made safe to use.

Media root: every file a tablet names (the session video in `ModelPath`, a photo or clip in
`CapturePath`, an enrolled face vector) must lie under the configured media root.

* A relative path is taken relative to the media root.
* An absolute path is accepted only if it lies inside the media root, so a site that keeps
  the original tablets' paths (``/usr/local/tnkhxt/files/video/x.mp4``) sets
  ``media_root = "/usr/local/tnkhxt"`` and the tablets' paths work unchanged; any other
  absolute path is refused with an error naming the media root.
* A path with a ``..`` component is refused outright, whatever it would resolve to.
* Containment is by path components, never by string prefix: ``<root>-evil/x.mp4`` and
  ``<root>2/etc/passwd`` are outside ``<root>``.
* A path that leads out of the media root through a symbolic link (a link inside the root
  pointing elsewhere, at any level of the path) is refused: what the server reads or writes
  is decided by where the file really is, not by how it is spelled. A site that keeps its
  media on another disk sets the media root to the real location (the root itself may be
  a link).

Camera URLs: the scheme must be in the allow-list (`Settings.allowed_schemes`); ``file``
means a path under the media root and ``device`` a local camera index (``0``, ``"1"`` or
``device:1``). Passwords are replaced by ``***`` wherever a URL is stored or logged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from khfsm.errors import KhfsmError
from khfsm.server import redaction


class PathRefused(KhfsmError, ValueError):
    """A path or URL from the network that may not be used; the message says why."""


MAX_DEVICE_INDEX = 255  # local cameras are numbered from 0; OpenCV takes a C int


def redact(url: str) -> str:
    """`url` with any credential masked (every form `khfsm.server.redaction` knows)."""
    return redaction.redact(url)


@dataclass(frozen=True, slots=True)
class MediaRoot:
    """The one directory under which network-named files may be read or written."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> MediaRoot:
        return cls(Path(os.path.normpath(os.path.abspath(root))))

    def resolve(self, raw: str, field: str) -> Path:
        """The file `raw` (the value of request key `field`) names, inside the media root."""
        text = raw.strip()
        if not text:
            raise PathRefused(f"{field} is empty; name a file under the media root {self.root}")
        if "\x00" in text:
            raise PathRefused(f"{field} contains a NUL character")
        _check_length(text, field)
        if "://" in text or redaction.redact(text) != text:
            # A URL or a credential here would become a file name, stored and logged as is.
            raise PathRefused(
                f"{field} {_shown(text)} is a URL or holds a credential; name a plain file "
                f"under the media root {self.root}"
            )
        pure = PurePosixPath(text)
        if ".." in pure.parts:
            raise PathRefused(
                f"{field} {_shown(raw)} contains '..'; name a file under the media root {self.root}"
            )
        if pure.is_absolute():
            path = Path(os.path.normpath(text))
            if path != self.root and self.root not in path.parents:
                raise PathRefused(
                    f"{field} {_shown(raw)} is outside the media root {self.root}; use a path "
                    f"under it (absolute or relative to it)"
                )
        else:
            path = Path(os.path.normpath(self.root / pure))
        self._refuse_link_out(path, raw, field)
        return path

    def _refuse_link_out(self, path: Path, raw: str, field: str) -> None:
        # realpath follows every link on the way (and leaves a not-yet-existing tail as is).
        real, real_root = Path(os.path.realpath(path)), Path(os.path.realpath(self.root))
        if real != real_root and real_root not in real.parents:
            raise PathRefused(
                f"{field} {_shown(raw)} leads outside the media root {self.root} through a "
                "symbolic link; name a file that really lies under the media root"
            )

    def relative(self, path: Path) -> str:
        """`path` relative to the media root, for messages and for the tablet."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


class SourceKind(StrEnum):
    URL = "url"  # a network camera (rtsp, http, ...)
    FILE = "file"  # a video file or photo under the media root
    DEVICE = "device"  # a local camera by index


@dataclass(frozen=True, slots=True)
class CameraSource:
    kind: SourceKind
    target: str | int  # what OpenCV opens: a URL, a path or a device index
    display: str  # for events and logs: password redacted

    @property
    def live(self) -> bool:
        """Live sources pace themselves; a file is played at its own frame rate."""
        return self.kind is not SourceKind.FILE

    @property
    def path(self) -> Path | None:
        return Path(str(self.target)) if self.kind is SourceKind.FILE else None


def parse_source(
    raw: str | int, media: MediaRoot, allowed_schemes: Iterable[str], field: str = "CapturePath"
) -> CameraSource:
    """The camera or file `raw` names, checked against the scheme allow-list and media root."""
    allowed = {scheme.lower() for scheme in allowed_schemes}
    if isinstance(raw, int):
        return _device(raw, allowed, field)
    text = raw.strip()
    if (text.isascii() and text.isdigit()) or text.lower().startswith("device:"):
        index = text.split(":", 1)[-1].lstrip("/")
        if not (index.isascii() and index.isdigit()) or len(index) > 6:
            raise PathRefused(
                f"{field} {_shown(text)}: a device is named by its index, e.g. device:0"
            )
        return _device(int(index), allowed, field)
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in allowed:
            shown = ", ".join(sorted(allowed)) or "none"
            raise PathRefused(
                f"{field} scheme {scheme!r} is not allowed on this server; allowed: {shown}"
            )
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as error:
            raise PathRefused(
                f"{field} {_shown(text)} is not a valid URL ({error}); e.g. rtsp://host:554/path"
            ) from None
        if scheme == "file":
            path = media.resolve(parts.path, field)
            return CameraSource(SourceKind.FILE, str(path), redact(str(path)))
        if not parts.hostname:
            raise PathRefused(f"{field} {_shown(text)} has no host; e.g. rtsp://host:554/path")
        return CameraSource(SourceKind.URL, text, redact(text))
    if "file" not in allowed:
        raise PathRefused(f"{field} names a file, but files are not allowed as cameras here")
    path = media.resolve(text, field)
    return CameraSource(SourceKind.FILE, str(path), redact(str(path)))


MAX_PATH_CHARS = 1024  # a whole path a tablet names
MAX_NAME_BYTES = 255  # one component of it (the file systems' own limit)


def _check_length(text: str, field: str) -> None:
    if len(text) > MAX_PATH_CHARS:
        raise PathRefused(f"{field} is {len(text)} characters long; at most {MAX_PATH_CHARS}")
    try:
        longest = max(len(part.encode("utf-8")) for part in text.split("/"))
    except UnicodeEncodeError:
        raise PathRefused(f"{field} is not valid Unicode (a lone surrogate)") from None
    if longest > MAX_NAME_BYTES:
        raise PathRefused(
            f"{field} has a file or folder name of {longest} bytes; at most {MAX_NAME_BYTES}"
        )


def _shown(raw: str) -> str:
    """`raw` as an error may echo it: credentials masked, at most a few hundred characters."""
    return repr(redaction.shorten(redaction.redact(raw)))


def _device(index: int, allowed: set[str], field: str) -> CameraSource:
    if "device" not in allowed:
        raise PathRefused(f"{field} names local camera {index}, but devices are not allowed here")
    if not 0 <= index <= MAX_DEVICE_INDEX:
        shown = index if abs(index) < 10**12 else "too large"
        raise PathRefused(
            f"{field}: a device index is 0 to {MAX_DEVICE_INDEX} (local cameras), got {shown}"
        )
    return CameraSource(SourceKind.DEVICE, index, f"device:{index}")
