"""The bundled model files and their manifest (models/manifest.json).

Every model file is hashed when it is first loaded and compared with the manifest, so that a
truncated download, a stray re-conversion or a hand-edited file cannot silently change the
keypoints that the rules and the audit trail rely on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from khfsm.errors import KhfsmError
from khfsm.hashing import file_sha256

MODELS_DIR_ENV = "KHFSM_MODELS_DIR"
MANIFEST_NAME = "manifest.json"


class ModelIntegrityError(KhfsmError, RuntimeError):
    """A model file is missing or differs from the manifest."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    file: str
    sha256: str
    input_name: str
    input_shape: tuple[int | str, ...]
    raw: dict[str, Any]


def models_dir() -> Path:
    """$KHFSM_MODELS_DIR, else the installed `khfsm.models` package (the top-level `models/`
    folder: in a wheel as package data, in a checkout or editable install the folder itself)."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env)
    return Path(str(files("khfsm.models")))


def load_manifest(directory: Path | None = None) -> dict[str, ModelEntry]:
    directory = directory or models_dir()
    path = directory / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ModelIntegrityError(
            f"model manifest not found: {path} (set {MODELS_DIR_ENV} to the models/ directory)"
        ) from e
    except json.JSONDecodeError as e:
        raise ModelIntegrityError(f"model manifest {path} is not valid JSON: {e}") from e
    return {
        name: ModelEntry(
            name=name,
            file=entry["file"],
            sha256=entry["sha256"],
            input_name=entry["input"]["name"],
            input_shape=tuple(entry["input"]["shape"]),
            raw=entry,
        )
        for name, entry in data["models"].items()
    }


def pose_model_hashes(directory: Path | None = None) -> dict[str, str]:
    """Model file -> sha256 of the pose models, from the manifest (empty if unavailable):
    what a session records as the models that produced its keypoints."""
    return _hashes_of(("pose_detection", "pose_landmark"), directory)


def face_model_hashes(directory: Path | None = None) -> dict[str, str]:
    """Model file -> sha256 of the face models (empty if unavailable)."""
    try:
        names = [name for name in load_manifest(directory) if name.startswith("face_")]
    except (ModelIntegrityError, KeyError, TypeError):
        return {}
    return _hashes_of(tuple(names), directory)


def _hashes_of(names: tuple[str, ...], directory: Path | None) -> dict[str, str]:
    try:
        manifest = load_manifest(directory)
    except (ModelIntegrityError, KeyError, TypeError):  # no usable manifest: none recorded
        return {}
    return {entry.file: entry.sha256 for name, entry in manifest.items() if name in names}


def verified_model_path(name: str, directory: Path | None = None) -> Path:
    """Path of model `name`, after checking that the file exists and matches its sha256."""
    directory = directory or models_dir()
    manifest = load_manifest(directory)
    if name not in manifest:
        raise ModelIntegrityError(f"model {name!r} is not in {directory / MANIFEST_NAME}")
    entry = manifest[name]
    path = directory / entry.file
    if not path.is_file():
        raise ModelIntegrityError(
            f"model file missing: {path} (model {name!r}); restore it from the repository "
            f"or regenerate it with models/convert.py"
        )
    actual = file_sha256(path)
    if actual != entry.sha256:
        raise ModelIntegrityError(
            f"model file altered: {path} (model {name!r}) has sha256 {actual}, "
            f"the manifest expects {entry.sha256}; restore it or regenerate it with "
            f"models/convert.py"
        )
    return path
