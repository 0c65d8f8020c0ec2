"""Logs (loguru, one JSON line per event) and Sentry, configured once per process.

Every log line carries `request_id`, `user_id` and `task_id` (and `job` in workers) from the
current `RequestContext`, so a grep for a request id finds everything that call did. Standard
library logging (grpc, psycopg, dramatiq) is routed into the same sink.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
import traceback
from importlib import metadata
from typing import TYPE_CHECKING, Any

import sentry_sdk
from loguru import logger

from server import request_context
from server.outage import OncePerMinute

if TYPE_CHECKING:
    from loguru import Message, Record

    from server.config import Settings

_CONTEXT_FIELDS = ("request_id", "user_id", "task_id", "job", "outbox_id")


def version() -> str:
    try:
        return metadata.version("hustle")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def _add_request_context(record: Record) -> None:
    ctx = request_context.current()
    if ctx is None:
        return
    extra = record["extra"]
    for name in _CONTEXT_FIELDS:
        value = getattr(ctx, name)
        if value is not None:
            extra.setdefault(name, value)


def _json_line(message: Message) -> None:
    record = message.record
    line: dict[str, Any] = {
        "ts": record["time"].isoformat(),
        "level": record["level"].name,
        "msg": record["message"],
        "logger": record["name"],
        "pid": record["process"].id,
    }
    line.update(record["extra"])
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        line["exception"] = "".join(
            traceback.format_exception(exception.type, exception.value, exception.traceback)
        )
    sys.stdout.write(json.dumps(line, default=str) + "\n")
    sys.stdout.flush()


def _pretty_format(record: Record) -> str:
    context = " ".join(
        f"{name}={{extra[{name}]}}"
        for name in ("request_id", "user_id", "task_id", "job")
        if name in record["extra"]
    )
    others = [k for k in record["extra"] if k not in _CONTEXT_FIELDS]
    fields = " ".join(f"{k}={{extra[{k}]}}" for k in others)
    return (
        "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
        f"<cyan>{context}</cyan> {{message}} <dim>{fields}</dim>\n{{exception}}"
    )


class _ToLoguru(logging.Handler):
    """Route standard library log records into loguru (loguru's documented recipe)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(settings: Settings) -> None:
    logger.remove()
    logger.configure(patcher=_add_request_context)
    if settings.logs_as_json:
        logger.add(_json_line, level=settings.log_level, backtrace=False, diagnose=False)
    else:
        logger.add(
            sys.stderr,
            level=settings.log_level,
            format=_pretty_format,
            backtrace=False,
            diagnose=False,
            colorize=None,
        )
    logging.basicConfig(handlers=[_ToLoguru()], level=logging.INFO, force=True)
    # Twilio's SDK logs every request and response at INFO: noise, and numbers we redact.
    logging.getLogger("twilio.http").setLevel(logging.WARNING)
    # psycopg_pool warns on each failed reconnection attempt: once a minute is enough.
    pool_log = logging.getLogger("psycopg.pool")
    for old in [f for f in pool_log.filters if isinstance(f, OncePerMinute)]:
        pool_log.removeFilter(old)
    pool_log.addFilter(OncePerMinute("error connecting in"))


def redact_email(address: str) -> str:
    """'jane.doe@example.com' -> 'j***@example.com': enough to tell messages apart in logs."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if at else "***"


def redact_phone(number: str) -> str:
    """'+15551234567' -> '+1******4567'."""
    return f"{number[:2]}{'*' * max(0, len(number) - 6)}{number[-4:]}" if len(number) > 6 else "***"


def configure_sentry(settings: Settings, **options: Any) -> bool:
    """Turn Sentry on when SENTRY_DSN is set. Call before the gRPC server is created."""
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.app_env.value,
        release=f"hustle@{version()}+{settings.build_commit}",
        traces_sample_rate=settings.sentry_traces_sample_rate,
        # Errors are captured explicitly by the error interceptor and the job middleware,
        # each exactly once, with the request context attached.
        auto_enabling_integrations=False,
        **options,
    )
    return True


def capture_exception(exc: BaseException) -> None:
    """Send an unexpected exception to Sentry (when on) with the current call's context."""
    if not sentry_sdk.get_client().is_active():
        return
    ctx = request_context.current()
    with sentry_sdk.new_scope() as scope:
        if ctx is not None:
            scope.set_tag("request_id", ctx.request_id)
            if ctx.method:
                scope.set_tag("rpc.method", ctx.method)
            if ctx.job:
                scope.set_tag("job", ctx.job)
            if ctx.task_id:
                scope.set_tag("task_id", ctx.task_id)
            if ctx.outbox_id is not None:
                scope.set_tag("outbox_id", str(ctx.outbox_id))
            if ctx.user_id:
                scope.set_user({"id": ctx.user_id})
        sentry_sdk.capture_exception(exc)
