"""Settings from environment variables (and `.env.local` in development), validated at start.

Every variable is listed, with its default, in `.env.example`. A missing or invalid value stops
start-up with one line naming the variable (see `load_settings`).
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import (
    AwareDatetime,
    Field,
    HttpUrl,
    PostgresDsn,
    RedisDsn,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class AppEnv(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class LogFormat(StrEnum):
    JSON = "json"
    PRETTY = "pretty"


class Settings(BaseSettings):
    """One immutable object built once at start and passed down; nothing reads os.environ later."""

    model_config = SettingsConfigDict(
        env_file=ROOT / ".env.local",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    app_env: AppEnv = AppEnv.DEV

    # data
    database_url: PostgresDsn
    db_pool_min_size: Annotated[int, Field(ge=0, le=100)] = 2
    db_pool_max_size: Annotated[int, Field(ge=1, le=100)] = 20
    db_connect_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    db_pool_max_idle_seconds: Annotated[float, Field(gt=0)] = 10.0
    slow_query_seconds: Annotated[float, Field(gt=0)] = 1.0
    redis_url: RedisDsn

    # gRPC and HTTP (health, metrics)
    grpc_host: str = "0.0.0.0"  # noqa: S104 - a server listens on all interfaces in its container
    grpc_port: Annotated[int, Field(ge=0, le=65535)] = 50051
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    server_processes: Annotated[int, Field(ge=1, le=256)] = Field(
        default_factory=lambda: os.cpu_count() or 1
    )
    health_check_interval_seconds: Annotated[float, Field(gt=0)] = 10.0
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 30.0

    # identity
    # signs page tokens and keys the hashes of one-time codes; required (32+ chars) in prod
    secret_key: SecretStr = SecretStr("dev-only-secret-key-do-not-use-in-production")
    session_ttl_days: Annotated[int, Field(ge=1, le=365)] = 30
    # where the caller's IP comes from (per-IP rate limits, sessions): unset, the TCP peer; else
    # the header the proxy in front sets itself (fly-client-ip behind Fly's HTTP handler), or
    # x-forwarded-for, read from the right: the address TRUSTED_PROXY_HOPS proxies appended
    client_ip_header: str | None = None
    trusted_proxy_hops: Annotated[int, Field(ge=1, le=10)] = 1
    # replaced by CLIENT_IP_HEADER; refused when set, so that no deployment trusts by accident
    trust_proxy_headers: bool | None = None
    # requests per minute and group (DOMAIN.md "Rate limits")
    rate_limit_auth_per_minute: Annotated[int, Field(ge=1)] = 5
    rate_limit_read_per_minute: Annotated[int, Field(ge=1)] = 120
    rate_limit_write_per_minute: Annotated[int, Field(ge=1)] = 20
    rate_limit_admin_per_minute: Annotated[int, Field(ge=1)] = 60
    rate_limit_upload_per_minute: Annotated[int, Field(ge=1)] = 10
    # task messages (the hourly and daily limits are the database's: migration 0034)
    rate_limit_message_per_minute: Annotated[int, Field(ge=1)] = 10

    # the feed: encoded task cards each server process keeps (by task id and version)
    feed_card_cache_entries: Annotated[int, Field(ge=0, le=1_000_000)] = 20_000

    # watch streams (issue 16): heartbeat period, open streams per user (per server process),
    # events a stream may fall behind by before it is ended, and how long events are kept
    watch_heartbeat_seconds: Annotated[float, Field(gt=0, le=300)] = 15.0
    watch_streams_per_user: Annotated[int, Field(ge=1, le=100_000)] = 8
    watch_queue_size: Annotated[int, Field(ge=1, le=100_000)] = 256
    watch_retention_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 24

    # files: S3 (or an S3-compatible endpoint); credentials from the usual AWS chain
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = "hustle-uploads"
    # content types (comma-separated) and maximum sizes per upload purpose (DOMAIN.md "Uploads")
    upload_proof_photo_types: str = "image/jpeg,image/png,image/heic,image/webp"
    upload_proof_photo_max_bytes: Annotated[int, Field(ge=1, le=10 * 1024 * 1024)] = (
        10 * 1024 * 1024
    )
    upload_avatar_types: str = "image/jpeg,image/png,image/webp"
    upload_avatar_max_bytes: Annotated[int, Field(ge=1, le=5 * 1024 * 1024)] = 5 * 1024 * 1024
    upload_verification_doc_types: str = "image/jpeg,image/png,application/pdf"
    upload_verification_doc_max_bytes: Annotated[int, Field(ge=1, le=25 * 1024 * 1024)] = (
        25 * 1024 * 1024
    )
    upload_message_photo_types: str = "image/jpeg,image/png,image/heic"
    upload_message_photo_max_bytes: Annotated[int, Field(ge=1, le=5 * 1024 * 1024)] = (
        5 * 1024 * 1024
    )

    # jobs
    worker_processes: Annotated[int, Field(ge=1, le=64)] = 1
    worker_threads: Annotated[int, Field(ge=1, le=64)] = 8
    worker_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9191
    job_max_retries: Annotated[int, Field(ge=0, le=100)] = 8
    job_min_backoff_ms: Annotated[int, Field(ge=1)] = 1_000
    job_max_backoff_ms: Annotated[int, Field(ge=1)] = 300_000
    relay_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 200
    relay_sweep_seconds: Annotated[float, Field(gt=0)] = 5.0
    # a row sent this long ago and not done is checked: if Redis lost its message, sent again
    outbox_resend_after_seconds: Annotated[float, Field(gt=0)] = 30.0
    # a worker silent this long is dead, and its unfinished messages go back to their queue
    # (Dramatiq's heartbeat); each broker call checks for dead workers with this probability
    job_heartbeat_timeout_seconds: Annotated[float, Field(ge=1)] = 15.0
    job_maintenance_chance: Annotated[float, Field(gt=0, le=1)] = 0.1

    # outbound messages: SendGrid and Twilio when their keys are set; otherwise their SDKs
    # talk to the local capturing endpoint at CAPTURE_URL (dev and tests)
    sendgrid_api_key: SecretStr | None = None
    sendgrid_host: str = "https://api.sendgrid.com"
    email_from: str = "Hustle <no-reply@hustle.app>"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str = "+15005550006"
    capture_url: str = "http://127.0.0.1:8025"
    # where links in emails point (the app or web front end)
    public_url: str = "http://localhost:3000"

    # API versions (docs/VERSIONING.md): once set, every hustle.v1 response carries the dates as
    # `deprecation` (RFC 9745) and `sunset` (RFC 8594) metadata, and the link as a `link`
    v1_deprecated_at: AwareDatetime | None = None
    v1_sunset_at: AwareDatetime | None = None
    v1_deprecation_link: HttpUrl | None = None

    # observability
    log_level: str = "INFO"
    log_format: LogFormat | None = None
    sentry_dsn: str | None = None
    sentry_traces_sample_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    build_commit: str = "unknown"
    prometheus_multiproc_dir: Path | None = None
    # unlocks the admin endpoints of the HTTP port (/debug/memory); unset: they do not exist
    admin_http_token: SecretStr | None = None

    # backups (pgBackRest; python -m server backup / restore, scheduled backups when set): the
    # stanza of DATABASE_URL's cluster, and pgBackRest's configuration file (unset: its default)
    pgbackrest_stanza: str | None = None
    pgbackrest_config: Path | None = None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("s3_endpoint_url", mode="before")
    @classmethod
    def _blank_endpoint_is_aws(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("client_ip_header", mode="before")
    @classmethod
    def _header_name(cls, value: object) -> object:
        if value in ("", None):
            return None
        name = str(value).strip().lower()
        if not name.replace("-", "").isalnum():
            raise ValueError("must be an HTTP header name such as fly-client-ip")
        return name

    @field_validator("trust_proxy_headers")
    @classmethod
    def _gone(cls, value: object) -> object:
        if value is not None:
            raise ValueError(
                "is no longer read: set CLIENT_IP_HEADER to the header your proxy sets itself "
                "(fly-client-ip behind Fly's HTTP handler), or leave it unset to use the peer"
            )
        return value

    @field_validator("sentry_dsn", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("build_commit", mode="before")
    @classmethod
    def _blank_is_unknown(cls, value: object) -> object:
        return "unknown" if value in ("", None) else value

    @field_validator(
        "sendgrid_api_key",
        "twilio_auth_token",
        "twilio_account_sid",
        "admin_http_token",
        mode="before",
    )
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        secret = self.secret_key.get_secret_value()
        if self.app_env is AppEnv.PROD and (len(secret) < 32 or secret.startswith("dev-only")):
            raise ValueError("SECRET_KEY must be set to 32 or more random characters in prod")
        return self

    @model_validator(mode="after")
    def _long_admin_token(self) -> Settings:
        token = self.admin_http_token
        if token is not None and len(token.get_secret_value()) < 32:
            raise ValueError("ADMIN_HTTP_TOKEN must be 32 or more random characters when set")
        return self

    @model_validator(mode="after")
    def _real_providers_in_production(self) -> Settings:
        if self.app_env is AppEnv.PROD and not (self.sendgrid_api_key and self.twilio_auth_token
                                                and self.twilio_account_sid):  # fmt: skip
            raise ValueError(
                "SENDGRID_API_KEY, TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required in prod"
            )
        return self

    @model_validator(mode="after")
    def _sunset_follows_deprecation(self) -> Settings:
        if self.v1_sunset_at is not None:
            if self.v1_deprecated_at is None:
                raise ValueError(
                    "V1_SUNSET_AT needs V1_DEPRECATED_AT: a version is deprecated first"
                )
            if self.v1_sunset_at < self.v1_deprecated_at:
                raise ValueError("V1_SUNSET_AT must not be earlier than V1_DEPRECATED_AT")
        if self.v1_deprecation_link is not None and self.v1_deprecated_at is None:
            raise ValueError("V1_DEPRECATION_LINK needs V1_DEPRECATED_AT")
        return self

    @property
    def uses_capture(self) -> tuple[bool, bool]:
        """(email, sms): whether each goes to the local capturing endpoint."""
        return self.sendgrid_api_key is None, self.twilio_auth_token is None

    @property
    def logs_as_json(self) -> bool:
        if self.log_format is not None:
            return self.log_format is LogFormat.JSON
        return self.app_env is not AppEnv.DEV

    @property
    def database_conninfo(self) -> str:
        return str(self.database_url)


class SettingsError(Exception):
    """Settings are missing or invalid; the message is one line naming what is wrong."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = str(error["msg"])
            if message.startswith("Value error, "):  # our own validators' words, as written
                message = message.removeprefix("Value error, ")
            else:
                message = message[:1].lower() + message[1:]
            name = ".".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {message}" if name else message)
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
