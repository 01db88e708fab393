"""Settings precedence: flags over KHFSM_* variables over the config file over defaults, with
the config file passed explicitly (no module-global override)."""

from __future__ import annotations

from pathlib import Path

import pytest

from khfsm.settings import Settings, load_settings


def test_flags_then_environment_then_config_file_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "site.toml"
    config.write_text('port = 9001\nmax_batch = 7\ncamera_grace_s = 2.5\nhost = "10.0.0.1"\n')
    monkeypatch.setenv("KHFSM_MAX_BATCH", "3")
    monkeypatch.setenv("KHFSM_CAMERA_GRACE_S", "4")
    settings = load_settings(config, camera_grace_s=1.5, host=None)
    assert settings.camera_grace_s == 1.5  # flag over environment and file
    assert settings.max_batch == 3  # environment over file
    assert settings.port == 9001 and settings.host == "10.0.0.1"  # file over defaults
    assert settings.inference_threads == 1  # default


def test_the_config_file_applies_only_where_it_is_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "khfsm.toml").write_text("port = 9002\n")
    assert load_settings().port == 9002  # ./khfsm.toml, as `khfsm serve` reads it
    assert Settings().port == 8765  # a Settings built in code reads no file
    monkeypatch.setenv("KHFSM_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match=r"missing\.toml does not exist"):
        load_settings()
