"""Logs (loguru, one JSON line per event) and Sentry, configured once per process.

Every log line carries `request_id`, `user_id` and `task_id` (and `job` in workers) from the
current `RequestContext`, so a grep for a request id finds everything that call did. Standard
library logging (grpc, psycopg, dramatiq) is routed into the same sink.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import grpc
import sentry_sdk
from sentry_sdk.integrations.loguru import LoguruIntegration
from sentry_sdk.tracing import Transaction, TransactionSource

from server import logs, request_context

if TYPE_CHECKING:
    from server.config import Settings

# --- Sentry -------------------------------------------------------------------------------
# What must never leave the process in an event, a transaction or a breadcrumb: passwords,
# tokens (bearer, link and reset tokens, API keys, DSNs), one-time codes, phone numbers, and
# the local part of email addresses. Values under a sensitive key are dropped whole; strings
# anywhere (messages, exception values, frame variables' reprs) are scrubbed by pattern.
FILTERED = "[Filtered]"
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|secret|token|authori[sz]ation|api[_-]?key|cookie|session|dsn|credential"
    r"|otp|phone|^(code|pin|verification_code|reset_code|one_time_code)$",
    re.IGNORECASE,
)
_TEXT_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # "Bearer abc...", "Basic dXNl..."
    (re.compile(r"\b(Bearer|Basic)\s+[\w.~+/=-]+", re.IGNORECASE), rf"\1 {FILTERED}"),
    # credentials in URLs: postgresql://user:secret@host
    (re.compile(r"(\w+://[^/\s:@]*:)[^@\s/]+@"), rf"\1{FILTERED}@"),
    # password=..., "token": "...", new_password: "..." (protobuf and dict reprs, query strings)
    (
        re.compile(
            r"""(\b(?:\w*pass(?:word|wd)?|\w*secret|\w*token|api[_-]?key|authorization|code|otp|pin)"""
            r"""['"]?\s*[:=]\s*['"]?)(?!(?:bearer|basic)\s)[^\s'",;&})\]]+""",
            re.IGNORECASE,
        ),
        rf"\1{FILTERED}",
    ),
    # "code 123456", "OTP 123456"
    (re.compile(r"\b(code|otp|pin)(\s+)\d{4,8}\b", re.IGNORECASE), rf"\1\2{FILTERED}"),
    # our bearer and link tokens: secrets.token_urlsafe(32), 43 URL-safe characters
    (re.compile(r"(?<![\w-])[A-Za-z0-9_-]{43}(?![\w-])"), FILTERED),
    # phone numbers (E.164, as the API takes them)
    (re.compile(r"\+[1-9]\d{7,14}(?!\d)"), "[phone]"),
    # email addresses: keep the first letter and the domain, as the logs do
    (
        re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
        lambda m: logs.redact_email(m.group(0)),
    ),
)
# Envelope fields that are ours, not the caller's (a release looks like an email address).
_EVENT_KEYS_KEPT = frozenset(
    {"event_id", "timestamp", "start_timestamp", "release", "environment", "platform", "sdk",
     "type", "level", "server_name", "modules", "transaction_info"}
)  # fmt: skip


def scrub_text(text: str) -> str:
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def _sensitive(key: object, item: object) -> bool:
    """A value to drop whole: under a sensitive key, and not empty or a mere flag."""
    if not isinstance(key, str) or not _SENSITIVE_KEY.search(key):
        return False
    return item is not None and item != "" and not isinstance(item, bool)


def scrub(value: Any) -> Any:
    """A copy of `value` (an event, or any part of one) without secrets or phone numbers."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            key: FILTERED if _sensitive(key, item) else scrub(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def scrub_event(event: Any, _hint: Any = None) -> Any:
    """Sentry's before_send / before_send_transaction: the event, scrubbed."""
    return {key: item if key in _EVENT_KEYS_KEPT else scrub(item) for key, item in event.items()}


def scrub_breadcrumb(crumb: Any, _hint: Any = None) -> Any:
    return scrub(crumb)


def configure_sentry(settings: Settings, **options: Any) -> bool:
    """Turn Sentry on when SENTRY_DSN is set. Call before the gRPC server is created.

    Release and environment come from the build (BUILD_COMMIT, set by the Dockerfile and
    `make run`) and APP_ENV; SENTRY_TRACES_SAMPLE_RATE of the calls (and jobs) send a
    performance trace (`call_transaction`). Every event, transaction and breadcrumb is scrubbed
    (`scrub_event`) before it leaves."""
    if not settings.sentry_dsn:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.app_env.value,
        release=release(settings),
        traces_sample_rate=settings.sentry_traces_sample_rate,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        # Errors are captured explicitly by the error interceptor and the job middleware,
        # each exactly once, with the request context attached: not again from their log lines.
        auto_enabling_integrations=False,
        disabled_integrations=[LoguruIntegration()],
        **options,
    )
    return True


def release(settings: Settings) -> str:
    return f"hustle@{logs.version()}+{settings.build_commit}"


_SPAN_STATUS = {"INTERNAL": "internal_error"}  # Sentry's names are gRPC's, lower case, but this


def span_status(code: grpc.StatusCode) -> str:
    return _SPAN_STATUS.get(code.name, code.name.lower())


@contextmanager
def call_transaction(
    op: str, name: str, headers: Mapping[str, str] | None = None
) -> Iterator[Transaction | None]:
    """A Sentry performance transaction around one call or job, continuing the caller's trace
    (sentry-trace / baggage metadata); sampled by SENTRY_TRACES_SAMPLE_RATE. None when Sentry
    is off or tracing is not asked for."""
    client = sentry_sdk.get_client()
    if not client.is_active() or not client.options.get("traces_sample_rate"):
        yield None
        return
    transaction = sentry_sdk.continue_trace(
        dict(headers or {}), op=op, name=name, source=TransactionSource.ROUTE
    )
    failure: BaseException | None = None
    with sentry_sdk.start_transaction(transaction) as started:
        try:
            yield started if isinstance(started, Transaction) else None
        except BaseException as exc:  # the caller set the status; Sentry's exit would say
            failure = exc  # "internal_error" for any exception, typed errors included
    if failure is not None:
        raise failure


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
