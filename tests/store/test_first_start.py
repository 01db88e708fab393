"""A server's first start on an empty PostgreSQL database: it applies the schema itself,
once, even when several nodes start at the same moment; a schema at another revision is
refused in one line that names `khfsm db upgrade`, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from khfsm.store import StoreError, migrate
from khfsm.store.urls import parse_url
from tests.server.conftest import free_port

NODES = 3


def test_nodes_starting_at_once_on_an_empty_database_all_open_it(postgres_empty_url: str) -> None:
    barrier = threading.Barrier(NODES)
    opened: list[str | None] = []
    failures: list[BaseException] = []

    def node() -> None:
        barrier.wait()
        try:
            recorder = migrate.open_store_on_start(postgres_empty_url)
            opened.append(migrate.current_of(recorder.engine))
            recorder.close()
        except BaseException as error:  # reported below with the others
            failures.append(error)

    threads = [threading.Thread(target=node) for _ in range(NODES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert opened == [migrate.head()] * NODES
    engine = sqlalchemy.create_engine(parse_url(postgres_empty_url))
    try:
        with engine.connect() as connection:
            versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert [row[0] for row in versions] == [migrate.head()]
    finally:
        engine.dispose()


def test_a_schema_with_a_revision_is_not_upgraded_on_start(postgres_empty_url: str) -> None:
    engine = sqlalchemy.create_engine(parse_url(postgres_empty_url))
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
            connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('0000_older')")
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match=r"revision 0000_older.*run `khfsm db upgrade`"):
        migrate.open_store_on_start(postgres_empty_url)


def serve_env(root: Path) -> dict[str, str]:
    return {**os.environ, "KHFSM_DATA_DIR": str(root), "KHFSM_HOST": "127.0.0.1"}


def test_khfsm_serve_on_an_empty_postgres_database_creates_the_schema(
    postgres_empty_url: str, tmp_path: Path
) -> None:
    port = free_port()
    command = [sys.executable, "-c", "from khfsm.cli.main import cli; cli()"]
    server = subprocess.Popen(
        [*command, "serve", "--database-url", postgres_empty_url, "--port", str(port)],
        env=serve_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert health is not None, "khfsm serve did not answer /healthz"
        assert health["store"]["reachable"] is True
        assert health["store"]["sessions"] == 0
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "Traceback" not in output
    assert migrate.current(postgres_empty_url) == migrate.head()


@pytest.mark.parametrize("problem", ["older schema", "unreachable"])
def test_khfsm_serve_refuses_a_store_it_cannot_use_in_one_line(
    problem: str, postgres_empty_url: str, tmp_path: Path
) -> None:
    url = postgres_empty_url
    if problem == "older schema":
        engine = sqlalchemy.create_engine(parse_url(url))
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
                connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('0000_older')")
        finally:
            engine.dispose()
        expected = "run `khfsm db upgrade`"
    else:
        url = "postgresql+psycopg://postgres@127.0.0.1:9/test"
        expected = "cannot open the event store at postgresql+psycopg://postgres@127.0.0.1:9/test"
    command = [sys.executable, "-c", "from khfsm.cli.main import cli; cli()"]
    done = subprocess.run(
        [*command, "serve", "--database-url", url, "--port", str(free_port())],
        env=serve_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert expected in lines[0]
