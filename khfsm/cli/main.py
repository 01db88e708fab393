"""Entry point of the `khfsm` command.

Subcommands live in their own modules and are imported only when invoked, so that
`khfsm --help` and light commands (`sessions`, `replay`) start without loading ONNX Runtime,
OpenCV or the web server.
"""

from __future__ import annotations

import importlib
import logging

import click

from khfsm import __version__

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("khfsm.cli.serve:serve", "Run the tablet WebSocket server for all lanes of a site."),
    "tablet": ("khfsm.cli.tablet:tablet", "Drive a lane from the command line, like a tablet."),
    "assess": ("khfsm.cli.assess:assess", "Assess a video file: pose, rules, store; print reps."),
    "pose": ("khfsm.cli.pose:pose", "Show what the pose model sees in an image or video."),
    "face": ("khfsm.cli.face:face", "Enroll a face or verify a photo against an enrolled one."),
    "sessions": ("khfsm.cli.sessions:sessions", "List stored sessions."),
    "replay": ("khfsm.cli.replay:replay", "Re-run the rules over a stored session and compare."),
    "verify": ("khfsm.cli.replay:verify", "Check a session's hash chain and replay it."),
    "rescore": (
        "khfsm.cli.rescore:rescore",
        "Old vs newest rules' verdicts over stored sessions (per repetition).",
    ),
    "db": ("khfsm.cli.db:db", "Manage the event store's schema (Alembic)."),
    "users": ("khfsm.cli.users:users", "Manage who may use the HTTP API; read its audit log."),
    "bundle": (
        "khfsm.cli.bundle:bundle",
        "Export a session's evidence bundle (zip), or verify one offline.",
    ),
    "results": ("khfsm.cli.results:results", "An exam day's results as CSV or JSON."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attribute = entry[0].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the table so that `--help` imports nothing heavy.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="khfsm")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="KHFSM_CONFIG",
    help="TOML config file (default: $KHFSM_CONFIG, else ./khfsm.toml if present).",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, config_file: str | None) -> None:
    """khfsm: assessment server for AI-proctored fitness tests.

    Settings are taken from command-line flags first, then environment variables named
    KHFSM_* (e.g. KHFSM_DATABASE_URL), then the config file, then built-in defaults.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file
