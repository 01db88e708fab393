"""`scripts/serve.sh` starts offline once `.venv` is set up, and reinstalls when it is not.

The package index is made unreachable (`PIP_INDEX_URL` on a closed port, no config file, no
find-links) and pip is given a log file (`PIP_LOG`): pip writes it whenever it runs a
command, so its absence proves that no pip ran at all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = ".venv/.khfsm-installed"


def offline_env(pip_log: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,  # no site pip.conf with local indexes or wheel folders
        PIP_INDEX_URL="http://127.0.0.1:9/simple",  # the discard port: nothing answers
        PIP_RETRIES="0",
        PIP_DEFAULT_TIMEOUT="2",
        PIP_LOG=str(pip_log),
    )
    return env


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def project_copy(tmp_path: Path, pyproject_text: str) -> Path:
    """The scripts and a pyproject.toml in a folder of their own, with a real venv."""
    root = tmp_path / "clone"
    (root / "scripts").mkdir(parents=True)
    for script in ("setup.sh", "serve.sh"):
        shutil.copy2(ROOT / "scripts" / script, root / "scripts" / script)
    (root / "pyproject.toml").write_text(pyproject_text)
    subprocess.run([sys.executable, "-m", "venv", str(root / ".venv")], check=True)
    return root


def stamp_for(root: Path, extras: str) -> str:
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()
    version = ".".join(str(part) for part in sys.version_info[:3])
    return f"{digest} {version} {extras}\n"


def test_serve_sh_starts_without_pip_when_the_venv_is_set_up(tmp_path: Path) -> None:
    # The checkout's own .venv, set up by scripts/setup.sh (scripts/test.sh runs it first).
    stamp = ROOT / STAMP
    assert stamp.is_file(), f"{stamp} is missing: set the checkout up with scripts/setup.sh"
    pip_log = tmp_path / "pip.log"
    done = run(["scripts/serve.sh", "--help"], ROOT, offline_env(pip_log))
    assert done.returncode == 0, done.stderr
    assert "Usage: khfsm serve" in done.stdout
    assert "nothing to install" in done.stderr
    assert not pip_log.exists(), "pip ran although .venv was set up for this pyproject.toml"
    assert "pip" not in done.stderr.replace(".venv", "")


def test_setup_installs_nothing_while_the_stamp_matches(tmp_path: Path) -> None:
    root = project_copy(tmp_path, (ROOT / "pyproject.toml").read_text())
    (root / STAMP).write_text(stamp_for(root, "cpu,dev"))
    pip_log = tmp_path / "pip.log"
    done = run(["scripts/setup.sh"], root, offline_env(pip_log))
    assert done.returncode == 0, done.stderr
    assert "nothing to install" in done.stderr
    assert not pip_log.exists()


def test_a_changed_pyproject_reinstalls(tmp_path: Path) -> None:
    original = (ROOT / "pyproject.toml").read_text()
    root = project_copy(tmp_path, original)
    (root / STAMP).write_text(stamp_for(root, "cpu,dev"))
    (root / "pyproject.toml").write_text(original + "\n# a new dependency would go here\n")
    pip_log = tmp_path / "pip.log"
    done = run(["scripts/serve.sh", "--help"], root, offline_env(pip_log))
    # The index cannot be reached, so the reinstall fails: what matters is that it was tried.
    assert "installing khfsm[cpu,dev]" in done.stderr
    assert pip_log.exists(), "a changed pyproject.toml must reinstall"
    assert done.returncode != 0
    assert not (root / STAMP).exists(), "a failed install must not leave its stamp"


def test_a_missing_extra_reinstalls_keeping_the_installed_ones(tmp_path: Path) -> None:
    root = project_copy(tmp_path, (ROOT / "pyproject.toml").read_text())
    (root / STAMP).write_text(stamp_for(root, "cpu"))
    pip_log = tmp_path / "pip.log"
    done = run(["scripts/setup.sh", "--test"], root, offline_env(pip_log))
    assert "installing khfsm[cpu,dev]" in done.stderr
    assert pip_log.exists()
