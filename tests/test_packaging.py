"""Packaging: the folders exercises/, migrations/ and models/ install inside the khfsm package,
and a wheel built from the checkout serves a session in a clean virtual environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from khfsm.registry import get_exercise
from tests.conftest import REPO_ROOT

CLIP = "pushup_03_div_test-video-2.mp4"  # short (18 s), low resolution: a quick pose pass


def _setuptools() -> dict[str, Any]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return dict(pyproject["tool"]["setuptools"])


def test_every_package_in_the_mapped_folders_is_listed() -> None:
    config = _setuptools()
    package_dir: dict[str, str] = config["package-dir"]
    found = set()
    for package, folder in package_dir.items():
        root = REPO_ROOT / folder
        # Any folder of Python files is a package (khfsm/server has no __init__.py).
        for module in root.rglob("*.py"):
            relative = module.parent.relative_to(root).parts
            if "__pycache__" not in relative:
                found.add(".".join((package, *relative)))
    assert found == set(config["packages"])
    # Nothing installs under a generic top-level name any more.
    assert all(package.split(".")[0] == "khfsm" for package in config["packages"])


def test_the_models_are_package_data() -> None:
    data = _setuptools()["package-data"]["khfsm.models"]
    manifest = json.loads((REPO_ROOT / "models" / "manifest.json").read_text())
    assert "manifest.json" in data and "*.onnx" in data
    assert all(entry["file"].endswith(".onnx") for entry in manifest["models"].values())


@pytest.mark.slow
def test_a_built_wheel_serves_a_session_in_a_clean_venv(
    tmp_path: Path, videos: Path, video_labels: dict[str, dict[str, Any]]
) -> None:
    # pip uses its configured index and cache: the dependencies are the ones already fetched.
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, REPO_ROOT)
    (wheel,) = dist.glob("khfsm-*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python, khfsm = venv / "bin" / "python", venv / "bin" / "khfsm"
    _run(python, "-m", "pip", "install", "-q", f"{wheel}[cpu]")

    # Run away from the checkout, so that nothing of it can be imported by accident.
    work = tmp_path / "work"
    work.mkdir()
    names = "exercises", "migrations", "models"
    probe = f"import importlib.util as u; print([u.find_spec(n) is None for n in {names!r}])"
    assert _run(python, "-c", probe, cwd=work).strip() == "[True, True, True]"

    database = f"sqlite:///{work / 'khfsm.sqlite'}"
    clip = videos / CLIP
    report = json.loads(
        _run(
            khfsm,
            "assess",
            clip,
            "--exercise",
            "pushup",
            "--json",
            "--database-url",
            database,
            cwd=work,
        )
    )
    # The wheel carries every released rules version; a new session takes the newest.
    newest = get_exercise("pushup").rules_version
    assert report["rules_version"] == newest and report["end_status"] == -2
    assert report["count"] == video_labels[CLIP]["gt"]
    replayed = _run(khfsm, "replay", report["session"], "--database-url", database, cwd=work)
    assert "identical" in replayed
    # The evidence bundle, checked as an outsider would: the wheel's command, no store.
    bundle = work / "evidence.zip"
    _run(khfsm, "bundle", "export", report["session"], "-o", bundle, "--database-url", database)
    (work / "khfsm.sqlite").unlink()
    assert _run(khfsm, "bundle", "verify", bundle, cwd=work).rstrip().endswith("intact")


def _run(*command: object, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KHFSM_MODELS_DIR")}
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{command[:3]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout
