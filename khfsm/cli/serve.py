"""`khfsm serve`: run the tablet WebSocket server for all lanes of a site."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from khfsm.cli.main import quiet_alembic
from khfsm.settings import DECODER_CHOICES, Settings, load_settings


@click.command()
@click.option("--host", help="Address to listen on (default 0.0.0.0).")
@click.option("--port", type=int, help="Port to listen on (default 8765).")
@click.option("--database-url", help="SQLAlchemy URL of the event store (default SQLite).")
@click.option(
    "--media-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Root for videos and photos named by tablets.",
)
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="ONNX models (default: the bundled ones).",
)
@click.option("--providers", type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]))
@click.option(
    "--decoder",
    type=click.Choice(DECODER_CHOICES),
    help="Where camera video is decoded (auto: the GPU when inference runs on CUDA).",
)
@click.option("--allowed-schemes", help="Camera URL schemes tablets may use, comma-separated.")
@click.option("--max-batch", type=int, help="Frames per inference batch across lanes.")
@click.option("--max-wait-ms", type=float, help="How long a batch waits to fill up.")
@click.option("--inference-workers", type=int, help="Inference batches run at once.")
@click.option("--camera-grace-s", type=float, help="Seconds without frames before -4.")
@click.option("--ws-ping-interval", type=float, help="WebSocket ping interval in seconds.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@click.pass_context
def serve(ctx: click.Context, **flags: object) -> None:
    """Run the tablet WebSocket server (any path) with /healthz and the HTTP API under
    /api/v1 (docs/api.md), until interrupted.

    On a fresh machine it starts on SQLite in the data directory with the bundled models.
    Every event is fsync'd to a local spool (data directory/spool) before the database;
    at start-up what a crash left there is stored and the sessions it left open are ended
    with -7. Exits 1 when a core task (event writer, spool, pose service) dies, so that a
    supervisor restarts it.

    One process carries some 8-19 lanes of 20 fps, whatever runs the inference (its Python
    runs under one GIL). For more, run several servers on one shared PostgreSQL store, each
    with its own data directory and port (README: "More lanes than one process carries");
    a second server on a data directory or SQLite store in use is refused.

    \b
    The tablet socket's limits and authority are settings (config file or KHFSM_*):
      max_lanes (64), max_lanes_per_connection (16), max_duration_s (3600), max_fps (30),
      max_message_bytes (65536), max_outgoing_frames (256), send_timeout_s (30),
      prepared_timeout_s (900);
      tablet_token, operator_token, tablet_allowed_origins, lane_ownership (all off);
      shutdown_drain_s (15): on SIGTERM running tests end with -6 and the tablets are told
      before their connections close.
    """
    try:
        settings = load_settings(ctx.obj.get("config_file") if ctx.obj else None, **flags)
    except Exception as error:  # pydantic or the config file: say which setting is wrong
        raise click.ClickException(f"invalid settings: {error}") from error
    logging.getLogger().setLevel(settings.log_level)
    logging.getLogger("khfsm").setLevel(settings.log_level)
    # transitions logs every state change at INFO; our lanes log one line per step instead.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    quiet_alembic(settings.log_level)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )

    from khfsm.server.app import create_app, uvicorn_server
    from khfsm.server.redaction import install_log_redaction
    from khfsm.store import StoreError
    from khfsm.store.migrate import open_store_on_start
    from khfsm.store.spool import SpoolError
    from khfsm.store.urls import redact_database_url

    install_log_redaction()
    # The store is checked (and on a first start given its schema) before the web server
    # runs: a store that cannot be used is one line naming the fix, not a startup traceback.
    # So is a store or spool another server already uses (the site takes their locks for
    # good when it starts; a server that wins the race in between is refused there).
    try:
        refuse_if_in_use(settings)
        open_store_on_start(settings.resolved_database_url).close()
    except (StoreError, SpoolError) as error:
        raise click.ClickException(str(error)) from error
    app = create_app(settings)
    click.echo(f"khfsm serving tablets on ws://{settings.host}:{settings.port}/ (any path)")
    click.echo(f"  health:     http://{settings.host}:{settings.port}/healthz")
    click.echo(f"  pages:      http://{settings.host}:{settings.port}/ui/ (review, site board)")
    click.echo(
        f"  API:        http://{settings.host}:{settings.port}/api/v1 "
        "(users: `khfsm users add NAME --role admin`)"
    )
    click.echo(f"  store:      {redact_database_url(settings.resolved_database_url)}")
    click.echo(f"  media root: {settings.resolved_media_root}")
    server = uvicorn_server(app, settings)
    # A core task of the site died (khfsm.server.app.request_exit): stop like on SIGTERM.
    app.state.exit_server = lambda: setattr(server, "should_exit", True)
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's own code for "the application did not start"
    site = getattr(app.state, "site", None)
    failure = site.failure if site is not None else None
    if failure:
        # Non-zero, so that a supervisor (systemd Restart=on-failure, Docker) restarts it.
        click.echo(f"khfsm stopped: {failure}", err=True)
        sys.exit(1)


def refuse_if_in_use(settings: Settings) -> None:
    """Raise `SpoolError` or `StoreError` when another server holds this server's spool
    directory or its SQLite store (the locks are taken and given back at once)."""
    from khfsm.store.ownership import claim_sqlite_store, sqlite_file
    from khfsm.store.spool import Spool
    from khfsm.store.urls import redact_database_url

    url = settings.resolved_database_url
    Spool(settings.resolved_spool_dir, redact_database_url(url)).open().close()
    database = sqlite_file(url)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
        claim_sqlite_store(database).close()
