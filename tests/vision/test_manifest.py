"""Bundled models are verified against models/manifest.json when loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnxruntime as ort
import pytest

from khfsm.hashing import file_sha256
from khfsm.vision.manifest import (
    MANIFEST_NAME,
    ModelIntegrityError,
    load_manifest,
    models_dir,
    verified_model_path,
)


def test_bundled_models_match_manifest() -> None:
    manifest = load_manifest()
    assert set(manifest) == {
        "pose_detection",
        "pose_landmark",
        "face_detection_short_range",
        "face_detection_full_range",
        "face_landmark",
        "face_embedding",
    }
    for name, entry in manifest.items():
        path = verified_model_path(name)
        assert path.name == entry.file
        assert entry.raw["licence"] and entry.raw["source"]["path"]


def test_each_models_outputs_are_the_ones_the_manifest_describes() -> None:
    """What a model file computes is what khfsm reads: the pose landmark model's unused
    segmentation output was dropped (models/convert.py), and it cost half of its run time."""
    for entry in load_manifest().values():
        session = ort.InferenceSession(
            str(verified_model_path(entry.name)), providers=["CPUExecutionProvider"]
        )
        names = [output.name for output in session.get_outputs()]
        assert names == list(entry.raw["outputs"]), entry.name
    landmark = load_manifest()["pose_landmark"]
    assert "Identity_2" not in landmark.raw["outputs"]


def _copy_models(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A copy of the manifest and one model (a hard link would let us alter the original)."""
    entry = load_manifest()[name]
    shutil.copy(models_dir() / MANIFEST_NAME, tmp_path / MANIFEST_NAME)
    shutil.copy(models_dir() / entry.file, tmp_path / entry.file)
    return tmp_path / entry.file, tmp_path


def test_missing_model_names_the_file(tmp_path: Path) -> None:
    path, directory = _copy_models(tmp_path, "face_detection_short_range")
    path.unlink()
    with pytest.raises(ModelIntegrityError, match=r"missing: .*face_detection_short_range"):
        verified_model_path("face_detection_short_range", directory)


def test_altered_model_names_the_file(tmp_path: Path) -> None:
    path, directory = _copy_models(tmp_path, "face_detection_short_range")
    assert verified_model_path("face_detection_short_range", directory) == path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"altered: .*face_detection_short_range"):
        verified_model_path("face_detection_short_range", directory)
    assert (
        file_sha256(models_dir() / path.name)
        == load_manifest()["face_detection_short_range"].sha256
    ), "the bundled original must be untouched"


def test_models_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHFSM_MODELS_DIR", str(tmp_path))
    assert models_dir() == tmp_path
    with pytest.raises(ModelIntegrityError, match="manifest not found"):
        load_manifest()
