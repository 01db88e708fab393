"""The key that signs login cookies: configured, or generated once into the data directory.

A key generated per start would log everybody out at every restart; one kept in the data
directory (readable by the server's user only) survives restarts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from khfsm.settings import Settings

SECRET_FILE = "api_secret_key"


def session_secret(settings: Settings) -> str:
    if settings.api_secret_key:
        return settings.api_secret_key
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        # O_EXCL: of two servers starting at once, one writes and both read its key.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key
