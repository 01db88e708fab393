"""Credentials masked out of anything that came from the network before it is logged, stored
or echoed to a tablet.

A camera URL carries its credentials in many spellings, and a hostile or careless client may
put one in any field. `redact` masks every form this server knows of, wherever it appears in
a text (a whole URL, a URL inside an error message, a raw request frame):

* user info: ``rtsp://admin:secret@cam/`` → ``rtsp://admin:***@cam/`` (a password holding an
  unescaped ``@`` is masked whole: the host is what follows the *last* ``@``);
* key=value credentials after ``?``, ``&``, ``;``, ``#`` or a blank, any case:
  ``?password=``, ``;password=`` (ONVIF style), ``&passwd=``, ``pwd``, ``pass``, ``token``,
  ``secret``, ``auth``, ``key``, ``apikey``/``api_key``, ``access_token``,
  ``credentials``: the value becomes ``***``; JSON's ``"password": "..."`` likewise;
* a URL's ``#fragment`` (never sent to a camera, so a place to smuggle a secret): ``#***``;
* all of the above percent-encoded (``%3Bpassword%3Dx``, ``rtsp%3A%2F%2Fu%3Ap%40cam``): the
  text is decoded (up to three times) and, if a decoded form holds a credential, the
  redacted decoded form is what is shown.

What comes back is for people to read; the value the server uses (the camera it opens) is
never redacted. `redact_value` does the same to any JSON value a request carried, and
`shorten` bounds what an error echoes of a bad value.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

MASK = "***"
ECHO_LIMIT = 200  # characters of a bad value an error may echo

_KEYS = (
    r"password|passwd|passwort|pwd|pass|secret|token|access_token|auth|authorization|"
    r"apikey|api_key|key|credentials?"
)
# Every pattern is linear in the text's length (a frame may be 64 KiB of hostile text):
# schemes and the URL before a fragment are bounded, values end at the first separator.
# A URL's user info: scheme:// then everything up to the last @ before the path.
_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.\-]{0,30}://)([^\s/\"'<>]*)@")
# key=value (or key:value) after a separator; the value runs to the next separator.
_KEY_VALUE = re.compile(
    rf"(?i)(^|[?&;#,\s/]|%3b|%26|%3f|%23)({_KEYS})(\s*(?:=|%3d)\s*)([^&;#,\s\"'<>]*)"
)
# "password": "value" in JSON text (a raw frame in a log line).
_JSON_KEY = re.compile(rf"(?i)(\"(?:{_KEYS})\"\s*:\s*)(\"(?:[^\"\\]|\\.)*\"|[^,}}\s]+)")
# A URL's fragment: from # to the end of the URL.
_FRAGMENT = re.compile(r"(?i)([a-z][a-z0-9+.\-]{0,30}://[^\s#\"'<>]{0,4096})#[^\s\"'<>]*")


def _redact_plain(text: str) -> str:
    def userinfo(match: re.Match[str]) -> str:
        info = match.group(2)
        user = info.split(":", 1)[0]
        return f"{match.group(1)}{user}:{MASK}@" if ":" in info else match.group(0)

    text = _USERINFO.sub(userinfo, text)
    text = _FRAGMENT.sub(lambda m: f"{m.group(1)}#{MASK}", text)
    text = _JSON_KEY.sub(lambda m: f'{m.group(1)}"{MASK}"', text)
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)


def redact(text: str) -> str:
    """`text` with every credential it holds (in any spelling above) masked."""
    redacted = _redact_plain(text)
    if "%" not in text:
        return redacted
    # Percent-encoded forms: if a decoded layer reveals a credential, show that layer masked.
    layer = text
    for _ in range(3):
        decoded = unquote(layer)
        if decoded == layer:
            break
        masked = _redact_plain(decoded)
        if masked != decoded:
            return masked
        layer = decoded
    return redacted


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """At most `limit` characters of `text`, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def redact_value(value: Any, limit: int = ECHO_LIMIT) -> Any:
    """A request value fit to echo: strings redacted and shortened, numbers within 64 bits
    as they are, anything else (objects, lists, huge numbers) left out (None)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return shorten(redact(scrub_surrogates(value)), limit)
    return None


def scrub_surrogates(text: str) -> str:
    """`text` with lone UTF-16 surrogates (not encodable as UTF-8) replaced by ``?``."""
    return text.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(text) else text


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class RedactingFilter(logging.Filter):
    """Masks credentials in every record a handler writes (its message and traceback): the
    last line of defence for text this server did not write itself, such as uvicorn's
    access line with the socket URL's ``?token=``.

    The WebSocket library's frame dumps (DEBUG ``< TEXT '...'``) are dropped: they show
    raw requests cut in the middle, where a credential can no longer be recognised."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG and _is_frame_dump(record):
            return False
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def _is_frame_dump(record: logging.LogRecord) -> bool:
    name = record.name
    from_socket = name.startswith(("websockets", "uvicorn"))
    return from_socket and isinstance(record.msg, str) and record.msg.startswith(("< ", "> "))


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add `RedactingFilter` to every handler of `logger` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
