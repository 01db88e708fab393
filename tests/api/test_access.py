"""Access control over real HTTP: 401 without credentials, 403 for a role too low, login
sessions by cookie, bearer tokens, and the audit log; `khfsm users` on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from khfsm.api.accounts import Accounts, Role
from khfsm.cli.main import cli
from khfsm.store.engine import create_store_engine
from tests.api.conftest import PASSWORD, ApiServer


def evidence_paths(server: ApiServer) -> list[str]:
    session = server.time_up["session"]
    return [
        "/sessions",
        f"/sessions/{session}",
        f"/sessions/{session}/events",
        f"/sessions/{session}/keypoints",
        f"/sessions/{session}/video",
        f"/sessions/{session}/verify",
        f"/sessions/{session}/bundle",
        "/results?date=2026-01-01",
        "/me",
        "/audit",
    ]


def test_every_endpoint_refuses_a_request_without_credentials(api_server: ApiServer) -> None:
    with api_server.client() as client:
        for path in evidence_paths(api_server):
            response = client.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
            assert "log in" in response.json()["detail"]
        session = api_server.time_up["session"]
        ruling = {"target": 1, "decision": "uphold", "reason": "seen on video"}
        assert client.post(f"/sessions/{session}/decisions", json=ruling).status_code == 401


def test_a_wrong_or_revoked_token_is_refused(api_server: ApiServer) -> None:
    headers = {"Authorization": "Bearer khfsm_not-a-token"}
    response = httpx.get(f"{api_server.url}/sessions", headers=headers)
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]


def test_roles(api_server: ApiServer) -> None:
    session = api_server.stopped["session"]
    ruling = {"target": "verdict", "decision": "uphold", "reason": "operator pressed stop"}
    with api_server.client("operator") as operator:
        assert operator.get("/sessions").status_code == 200
        response = operator.post(f"/sessions/{session}/decisions", json=ruling)
        assert response.status_code == 403
        assert response.json()["detail"] == "this needs the reviewer role; operator is operator"
        assert operator.get("/audit").status_code == 403
    with api_server.client("reviewer") as reviewer:
        assert reviewer.get("/audit").status_code == 403
    with api_server.client("admin") as admin:
        assert admin.get("/audit").status_code == 200
        assert admin.get("/me").json() == {"user": "admin", "role": "admin"}


def test_login_cookie_logout(api_server: ApiServer) -> None:
    with httpx.Client(base_url=api_server.url, timeout=30) as browser:
        wrong = browser.post("/login", json={"username": "reviewer", "password": "nope"})
        assert wrong.status_code == 401 and not browser.cookies
        assert (
            browser.post("/login", json={"username": "ghost", "password": PASSWORD}).status_code
            == 401
        )
        response = browser.post("/login", json={"username": "reviewer", "password": PASSWORD})
        assert response.status_code == 200
        assert response.json() == {"user": "reviewer", "role": "reviewer"}
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert browser.get("/me").json() == {"user": "reviewer", "role": "reviewer"}
        assert browser.get("/sessions").status_code == 200
        assert browser.post("/logout").status_code == 204
        assert browser.get("/me").status_code == 401


def test_a_forged_cookie_is_refused(api_server: ApiServer) -> None:
    with httpx.Client(base_url=api_server.url, timeout=30) as browser:
        browser.cookies.set("khfsm_session", "eyJ1c2VyIjogImFkbWluIn0=.forged.signature")
        assert browser.get("/me").status_code == 401


def test_a_removed_user_loses_cookie_and_tokens_at_once(api_server: ApiServer) -> None:
    engine = create_store_engine(api_server.running.database_url)
    try:
        accounts = Accounts(engine)
        accounts.add("temp", Role.OPERATOR, PASSWORD)
        token = accounts.issue_token("temp")
        with httpx.Client(base_url=api_server.url, timeout=30) as browser:
            browser.post("/login", json={"username": "temp", "password": PASSWORD})
            assert browser.get("/me").status_code == 200
            bearer = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"{api_server.url}/me", headers=bearer).status_code == 200
            accounts.remove("temp")
            assert browser.get("/me").status_code == 401
            assert httpx.get(f"{api_server.url}/me", headers=bearer).status_code == 401
    finally:
        engine.dispose()


def test_evidence_reads_are_audited(api_server: ApiServer) -> None:
    session = api_server.time_up["session"]
    with api_server.client("operator") as operator:
        operator.get(f"/sessions/{session}")
        operator.get(f"/sessions/{session}/keypoints")
        operator.get(f"/sessions/{session}/video", headers={"Range": "bytes=0-9"})
    with api_server.client("admin") as admin:
        entries = admin.get("/audit", params={"user": "operator", "session": session}).json()
    actions = [entry["action"] for entry in entries]
    # Newest first.
    assert actions[:3] == ["read video", "read keypoints", "read session"]
    assert entries[0]["detail"] == "bytes=0-9"
    assert all(entry["user"] == "operator" and entry["session_id"] == session for entry in entries)


def test_openapi_is_served_and_no_cdn_docs(api_server: ApiServer) -> None:
    root = api_server.running.http_url
    spec = httpx.get(f"{root}/api/v1/openapi.json").json()
    assert "/api/v1/sessions/{session_id}/video" in spec["paths"]
    assert "/api/v1/sessions/{session_id}/decisions" in spec["paths"]
    assert httpx.get(f"{root}/docs").status_code == 404
    assert httpx.get(f"{root}/healthz").json()["status"] == "ok"


# -- the command line ---------------------------------------------------------------------------


def test_cli_users(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'khfsm.sqlite'}"
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(cli, ["users", *args, "--database-url", url], input=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    assert "no users" in run("list")
    assert "added ana (reviewer)" in run(
        "add", "ana", "--role", "reviewer", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert "added bo (admin)" in run(
        "add", "bo", "--role", "admin", stdin=f"{PASSWORD}\n{PASSWORD}\n"
    )
    token = run("token", "ana").strip()
    assert token.startswith("khfsm_") and len(token) > 40
    listing = run("list")
    assert "ana" in listing and "reviewer" in listing and "tokens 1" in listing
    engine = create_store_engine(url)
    try:
        accounts = Accounts(engine)
        assert accounts.bearer(token) == accounts.user("ana")
        assert accounts.login("bo", PASSWORD) is not None
        assert accounts.login("bo", "wrong password") is None
    finally:
        engine.dispose()
    again = runner.invoke(
        cli,
        ["users", "add", "ana", "--role", "admin", "--password-stdin", "--database-url", url],
        input=PASSWORD,
    )
    assert again.exit_code == 1 and "already exists" in again.output
    short = runner.invoke(
        cli,
        ["users", "add", "cy", "--role", "admin", "--password-stdin", "--database-url", url],
        input="short",
    )
    assert short.exit_code == 1 and "at least 8" in short.output
    assert "removed ana" in run("remove", "ana")
    missing = runner.invoke(cli, ["users", "remove", "ana", "--database-url", url])
    assert missing.exit_code == 1 and "no user 'ana'" in missing.output
    assert "ana" not in run("list")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_accounts_and_audit_on_each_backend(backend: str, request: pytest.FixtureRequest) -> None:
    from khfsm.api.audit import AuditLog
    from khfsm.store import migrate

    url = request.getfixturevalue(f"{backend}_empty_url")
    assert migrate.upgrade(url) == migrate.head()
    engine = create_store_engine(url)
    try:
        accounts = Accounts(engine)
        accounts.add("eve", Role.REVIEWER, PASSWORD)
        token = accounts.issue_token("eve")
        assert accounts.bearer(token) is not None
        audit = AuditLog(engine)
        audit.record("eve", "read session", "s1", "")
        audit.record("eve", "decide", "s1", "uphold 1")
        assert [entry.action for entry in audit.entries(session_id="s1")] == [
            "decide",
            "read session",
        ]
        accounts.remove("eve")
        assert accounts.bearer(token) is None
        assert len(audit.entries(user="eve")) == 2  # a removed user's entries stay
    finally:
        engine.dispose()
    migrate.downgrade(url, "0001")  # the migration undoes cleanly
    assert migrate.current(url) == "0001"


def test_tablets_still_connect_at_any_path_even_an_api_one(api_server: ApiServer) -> None:
    import anyio

    from tests.server.conftest import connect, op

    async def status_ack() -> dict[str, Any]:
        async with connect(api_server.running, "/api/v1/sessions") as tablet:
            return (await tablet.request(op("status", 77))).body

    ack = anyio.run(status_ack)
    assert ack["op"] == "status" and ack["CaptureID"] == 77
