"""The pages' own routes over plain HTTP: the shells and their static files (no CDN), the
login they sit behind, and the measurement series checked against the stored session and the
rules' own thresholds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from khfsm.web.router import STATIC
from tests.browser.conftest import PASSWORD, Site

pytestmark = [pytest.mark.video]


@contextmanager
def logged_in(site: Site, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        response = client.post("/api/v1/login", json={"username": user, "password": PASSWORD})
        assert response.status_code == 200, response.text
        yield client


def test_root_redirects_to_the_pages_and_data_needs_a_login(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as anonymous:
        root = anonymous.get("/")
        assert root.status_code in (302, 307) and root.headers["location"] == "/ui/"
        for page in ("/ui/", "/ui/login", "/ui/board", f"/ui/sessions/{site.session_id}"):
            shell = anonymous.get(page)
            assert shell.status_code == 200 and '<script type="module"' in shell.text
        assert (
            anonymous.get(f"/api/v1/ui/sessions/{site.session_id}/measurement").status_code == 401
        )
        assert anonymous.get("/api/v1/ui/board/stream").status_code == 401


def test_every_script_and_style_comes_from_the_server(site: Site) -> None:
    """No CDN: each page's src/href and each module's import is a path on this server."""
    with httpx.Client(base_url=site.url, timeout=30) as anonymous:
        for html in STATIC.glob("*.html"):
            for link in re.findall(r'(?:src|href)="([^"]+)"', html.read_text()):
                assert link.startswith(("/ui/static/", "data:")), (html.name, link)
                if link.startswith("/ui/"):
                    assert anonymous.get(link).status_code == 200, link
        for module in (STATIC / "js").glob("*.js"):
            for target in re.findall(r'^import .* from "([^"]+)";', module.read_text(), re.M):
                assert target.startswith("./") or target.startswith("../vendor/"), target
                assert (module.parent / target).resolve().is_file(), target
    licence = STATIC / "vendor" / "uplot-1.6.32" / "LICENSE"
    assert "MIT License" in licence.read_text()
    assert "1.6.32" in (STATIC / "vendor" / "VENDORED.md").read_text()


def test_measurement_is_the_rules_signal_with_their_thresholds(site: Site) -> None:
    from khfsm.exercises import pushup2

    with logged_in(site, "otto") as client:
        session: dict[str, Any] = client.get(f"/api/v1/sessions/{site.session_id}").json()
        series = client.get(f"/api/v1/ui/sessions/{site.session_id}/measurement").json()
    assert series["available"] and series["rules_version"] == "pushup-2"
    assert series["name"] == "elbow angle"
    limits = pushup2.thresholds(session["level"])
    assert {line["name"]: line["value"] for line in series["thresholds"]} == {
        "depth_limit_deg": round(limits.depth_limit_deg, 2),
        "lockout_limit_deg": round(limits.lockout_limit_deg, 2),
    }
    assert len(series["frames"]) == len(series["values"]) == len(series["times"]) > 100
    repetitions = session["repetitions"]
    assert [rep["index"] for rep in series["reps"]] == [rep["index"] for rep in repetitions]
    for judged, rep in zip(series["reps"], repetitions, strict=True):
        assert judged["value"] == rep["measurements"]["min_elbow_deg"]
        assert rep["start_frame"] <= judged["frame"] <= rep["end_frame"]
        # The plotted curve is the signal the verdict was judged on: its raw minimum within
        # the repetition is the judged (3-frame median filtered) minimum, give or take jitter.
        window = [
            value
            for frame, value in zip(series["frames"], series["values"], strict=True)
            if rep["start_frame"] <= frame <= rep["end_frame"] and value is not None
        ]
        assert min(window) == pytest.approx(judged["value"], abs=8.0)
        assert min(window) <= judged["value"] + 0.06


def test_static_files_are_package_data() -> None:
    """The pages travel in the wheel: pyproject's package-data patterns cover every file."""
    import tomllib

    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["khfsm.web"]
    root = STATIC.parent
    for path in STATIC.rglob("*"):
        if path.is_file():
            relative = path.relative_to(root)
            assert any(relative.match(p) for p in patterns), relative
