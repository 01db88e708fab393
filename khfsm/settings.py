"""Settings: command-line flags, then KHFSM_* environment variables, then a TOML config
file, then defaults — in that order of precedence.

`load_settings` reads the config file named by --config or KHFSM_CONFIG, else ./khfsm.toml
if it exists; keys are the field names below (e.g. `database_url = "postgresql+psycopg://..."`).
`Settings(...)` itself takes only its arguments and KHFSM_* variables: whoever builds one
passes it on explicitly (to `khfsm.Site`, `create_app`), nothing reads a global.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "khfsm"


# Where camera video is decoded (khfsm.server.decoding); one list for the setting, the
# `serve --decoder` flag and the decoder's own check.
DecoderChoice = Literal["auto", "cpu", "cuda"]
DECODER_CHOICES: tuple[str, ...] = get_args(DecoderChoice)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KHFSM_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Where state lives.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the event store; default SQLite in data_dir.",
    )
    media_root: Path | None = Field(
        default=None,
        description="Root for videos and photos named by tablets; default data_dir/media.",
    )
    host: str = "0.0.0.0"
    port: int = 8765
    allowed_schemes: list[str] = Field(
        default_factory=lambda: ["rtsp", "rtsps", "http", "https", "file", "device"],
        description="Camera URL schemes a tablet may name (file = a path under media_root).",
    )
    models_dir: Path | None = Field(default=None, description="ONNX models; default bundled.")
    providers: str = Field(default="auto", description="auto, cpu or cuda.")
    decoder: DecoderChoice = Field(
        default="auto",
        description="Where camera video is decoded: auto (the CPU: measured faster than the "
        "GPU's video decoder, khfsm.server.decoding), cpu, or cuda (NVDEC).",
    )
    inference_threads: int = 1
    inference_workers: int = Field(
        default=0,
        description="Pose batches run at once; 0: one per core on CPU, 2 on a GPU "
        "(khfsm.vision.batching.inference_plan).",
    )
    max_batch: int = Field(
        default=0,
        description="Frames of different lanes per pose batch; 0: 2 on CPU (frames already "
        "waiting, once the lanes are behind), 16 on a GPU.",
    )
    max_wait_ms: float | None = Field(
        default=None,
        ge=0,
        description="How long a pose batch waits for more frames after its first; unset: "
        "0 on CPU, 5 ms on a GPU (khfsm.vision.batching.inference_plan).",
    )
    crop_threads: int = Field(
        default=0,
        ge=0,
        description="Threads that crop the frames of one pose batch at once; 0: 4 on a GPU "
        "(a batch of 16 frames need not wait for 16 crops in a row), 1 on CPU "
        "(khfsm.vision.batching.inference_plan).",
    )
    opencv_threads: int = Field(
        default=0,
        ge=0,
        description="OpenCV's thread pool (the crops for the pose models); 0: as many as "
        "inference workers run at once, not one per core in every server process.",
    )
    ws_ping_interval: float = 20.0
    camera_grace_s: float = 5.0
    ffmpeg_capture_options: str = Field(
        default="rtsp_transport;tcp",
        description="OpenCV's FFmpeg capture options (IP cameras over TCP: no smeared frames "
        "from lost UDP packets); OPENCV_FFMPEG_CAPTURE_OPTIONS, if set, wins.",
    )
    log_level: str = "INFO"
    # -- the HTTP API (khfsm.api) --
    api_secret_key: str | None = Field(
        default=None,
        description="Signs the API's login cookies; default a key generated once into "
        "data_dir/api_secret_key. Give every server behind one address the same key.",
    )
    api_login_hours: int = Field(default=12, description="How long a login lasts.")
    api_cookie_secure: bool = Field(
        default=False, description="Send the login cookie over HTTPS only (behind TLS)."
    )
    # -- review and results out (issue 12: khfsm.review) --
    public_url: str | None = Field(
        default=None,
        description="Where people reach this server (https://exam.example); the results "
        "export and the webhook link each session's evidence under it.",
    )
    evidence_url: str = Field(
        default="{public_url}/ui/sessions/{session_id}",
        description="The evidence link of a session: a template of {public_url} and {session_id}.",
    )
    webhook_url: str | None = Field(
        default=None,
        description="If set, each session's result is POSTed here as JSON when it ends "
        "(retried with backoff; never delays a lane).",
    )
    webhook_timeout_s: float = 10.0
    webhook_max_attempts: int = 8
    webhook_max_queue: int = 1000
    # -- durability (issue 10, i10s): the local spool and the database's timeouts --
    spool_dir: Path | None = Field(
        default=None,
        description="Local spool: every event is fsync'd here before the database and drained "
        "into it, also at the next start after a crash; default data_dir/spool.",
    )
    db_connect_timeout_s: float = Field(
        default=5.0, gt=0, description="PostgreSQL: seconds to establish a connection."
    )
    db_statement_timeout_s: float = Field(
        default=10.0,
        ge=0,
        description="PostgreSQL: seconds one statement may take (0: no limit). Connect plus "
        "statement timeout is also how long the writer waits for an answer before it treats "
        "the database as unavailable (a blackholed network).",
    )
    db_busy_timeout_ms: int = Field(
        default=5000, ge=0, description="SQLite: milliseconds to wait for another writer's lock."
    )
    # -- the tablet socket: limits and authority (issue 10, the wire; docs in
    # khfsm/server/limits.py and khfsm/server/authority.py) --
    max_lanes: int = Field(
        default=64, ge=1, description="Lanes prepared or running at once on this server."
    )
    max_lanes_per_connection: int = Field(
        default=16, ge=1, description="Lanes one tablet connection may have prepared or running."
    )
    max_duration_s: float = Field(
        default=3600.0, gt=0, description="Longest Duration a tablet may ask."
    )
    max_fps: float = Field(default=30.0, gt=0, description="Highest Fps a tablet may ask.")
    max_message_bytes: int = Field(
        default=65536, ge=1024, description="Largest request frame answered (larger: error ack)."
    )
    max_outgoing_frames: int = Field(
        default=256, ge=8, description="Replies queued for one tablet before it is read no more."
    )
    send_timeout_s: float = Field(
        default=30.0, gt=0, description="A tablet that takes no frame for this long is closed."
    )
    tablet_token: SecretStr | None = Field(
        default=None, description="Shared site token tablets must present (?token= or Token)."
    )
    operator_token: SecretStr | None = Field(
        default=None, description="Token of the site operator: may start/stop any lane."
    )
    tablet_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Browser Origins allowed on the socket; empty: any."
    )
    lane_ownership: bool = Field(
        default=False, description="Only the connection that prepared a lane may start/stop it."
    )
    prepared_timeout_s: float = Field(
        default=900.0, gt=0, description="A lane prepared and not started ends after this long."
    )
    shutdown_drain_s: float = Field(
        default=15.0, gt=0, description="On SIGTERM, how long lanes get to end and push."
    )

    @field_validator("tablet_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_schemes", mode="before")
    @classmethod
    def _split_schemes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'khfsm.sqlite'}"

    @property
    def resolved_media_root(self) -> Path:
        return self.media_root if self.media_root is not None else self.data_dir / "media"

    @property
    def resolved_spool_dir(self) -> Path:
        return self.spool_dir if self.spool_dir is not None else self.data_dir / "spool"


def config_path(config_file: str | Path | None = None) -> Path | None:
    """The config file: `config_file`, else $KHFSM_CONFIG, else ./khfsm.toml if it exists."""
    candidate = config_file or os.environ.get("KHFSM_CONFIG")
    if candidate:
        path = Path(candidate)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        return path
    local = Path("khfsm.toml")
    return local if local.is_file() else None


def load_settings(config_file: str | Path | None = None, **flags: Any) -> Settings:
    """Settings with `flags` (only those not None) over KHFSM_* variables over the config
    file (see `config_path`) over the defaults."""
    path = config_path(config_file)
    from_file = TomlConfigSettingsSource(Settings, toml_file=path)() if path else {}
    from_env = EnvSettingsSource(Settings)()
    # What the environment sets is left to Settings itself, so that it wins over the file.
    values = {key: value for key, value in from_file.items() if key not in from_env}
    values.update({key: value for key, value in flags.items() if value is not None})
    return Settings(**values)
