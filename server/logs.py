"""Logs: loguru, one JSON line per event (or a pretty line in development), configured once
per process.

Every log line carries `request_id`, `user_id` and `task_id` (and `job` in workers) from the
current `RequestContext`, so a grep for a request id finds everything that call did. Standard
library logging (grpc, psycopg, dramatiq) is routed into the same sink. A module of its own
(no grpc, no Sentry) so that processes that only supervise stay small.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from loguru import logger

from server import request_context

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


_json_access = False
_PID = os.getpid()


def access_log(method: str, code: str, duration_ms: float, peer: str) -> None:
    """The one line each call leaves (level INFO, message "rpc"). With JSON logs it is written
    straight to stdout, in the same shape as every other line: at one per call, going through
    loguru's record machinery cost about a third of a bare call's CPU time."""
    if not _json_access:
        logger.bind(method=method, code=code, duration_ms=duration_ms, peer=peer).info("rpc")
        return
    line: dict[str, Any] = {
        "ts": datetime.now(UTC).isoformat(),
        "level": "INFO",
        "msg": "rpc",
        "logger": "server.interceptors.request_context",
        "pid": _PID,
        "method": method,
        "code": code,
        "duration_ms": duration_ms,
        "peer": peer,
    }
    ctx = request_context.current()
    if ctx is not None:
        for name in _CONTEXT_FIELDS:
            value = getattr(ctx, name)
            if value is not None:
                line[name] = value
    sys.stdout.write(json.dumps(line, default=str) + "\n")
    sys.stdout.flush()


class OncePerMinute(logging.Filter):
    """Lets a repeated log message through once a minute: psycopg_pool warns on every failed
    reconnection attempt (several a second per process while the database is down)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix
        self._last = -60.0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self._prefix):
            return True
        now = time.monotonic()
        if now - self._last < 60:
            return False
        self._last = now
        return True


def configure_logging(settings: Settings) -> None:
    global _json_access, _PID
    _PID = os.getpid()
    # INFO lines are kept at INFO and below only; the fast access line obeys the level too
    _json_access = settings.logs_as_json and logger.level(settings.log_level).no <= 20
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
