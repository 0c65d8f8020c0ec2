"""What is known about the call (or job) being served: its request id, user and task.

One mutable `RequestContext` per call lives in a context variable, set by the outermost
interceptor. Inner layers fill it in as they learn more (auth sets `user_id`, a task procedure
sets `task_id`), and every log line, metric and Sentry event of that call reads it from here.
asyncio copies context variables into tasks and `to_thread` calls, so it follows the call.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(slots=True)
class RequestContext:
    request_id: str
    method: str = ""
    user_id: str | None = None
    task_id: str | None = None
    job: str | None = None
    outbox_id: int | None = None
    # what the transport says of the caller (admission fills client_ip from the peer, or from
    # the trusted proxy's header)
    user_agent: str | None = None
    client_ip: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("hustle_request", default=None)
# Metadata for the call's response headers, from interceptors that run before they are sent.
_response_headers: ContextVar[tuple[tuple[str, str], ...]] = ContextVar(
    "hustle_response_headers", default=()
)


def current() -> RequestContext | None:
    return _current.get()


def begin(
    request_id: str, method: str = "", job: str | None = None, user_agent: str | None = None
) -> RequestContext:
    """Start a new context for this call (the caller runs the call inside it)."""
    ctx = RequestContext(request_id=request_id, method=method, job=job, user_agent=user_agent)
    _current.set(ctx)
    return ctx


def accept_or_make_request_id(candidate: str | None) -> str:
    """The client's `x-request-id` when it is a sane token, else a fresh one."""
    if candidate and _REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def set_user(user_id: str) -> None:
    ctx = _current.get()
    if ctx is not None:
        ctx.user_id = user_id


def set_client_ip(ip: str) -> None:
    ctx = _current.get()
    if ctx is not None:
        ctx.client_ip = ip


def set_task(task_id: str) -> None:
    ctx = _current.get()
    if ctx is not None:
        ctx.task_id = task_id


def response_headers() -> tuple[tuple[str, str], ...]:
    """What the call's response headers (initial metadata) carry besides the request id."""
    return _response_headers.get()


@contextmanager
def adding_response_headers(headers: Sequence[tuple[str, str]]) -> Iterator[None]:
    """Add metadata to the response headers of the call that runs inside this block (the
    request-context interceptor sends them; an interceptor outside it adds to them)."""
    token = _response_headers.set((*_response_headers.get(), *headers))
    try:
        yield
    finally:
        _response_headers.reset(token)


# A unary call's response headers, held until its outcome is known (see
# server/interceptors/request_context.py): whoever answers first takes them.
_held_headers: ContextVar[list[tuple[str, str]] | None] = ContextVar(
    "hustle_held_headers", default=None
)


def hold_headers(headers: Sequence[tuple[str, str]]) -> None:
    """The outermost interceptor: these headers are to go with the call's answer."""
    _held_headers.set(list(headers))


def take_held_headers() -> tuple[tuple[str, str], ...] | None:
    """The held headers, once (None when none are held or they were taken)."""
    held = _held_headers.get()
    if held is None:
        return None
    _held_headers.set(None)
    return tuple(held)
