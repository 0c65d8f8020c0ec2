"""Outermost: give every call a request id, a log context and one access-log line.

The id comes from the client's `x-request-id` metadata when it is a sane token, else it is made
here; it is returned to the client in the response's initial metadata, and every log line of
the call carries it (see `server.request_context`).

A unary call's headers wait for its outcome (`request_context.hold_headers`). Sent with an
answer or an error, they are its initial metadata as before; an UNAVAILABLE error (HX902: the
database or a fail-closed rate limiter unreachable) goes without them, trailers-only, the
request id in its trailing metadata (the error interceptor decides): response headers commit a
call (gRFC A6), and a committed call is never retried, so the clients' retry policy
(clients/python) could not otherwise retry a safe call on HX902. A streaming call sends its
headers at once, before its first message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc import aio

from server import logs, request_context
from server.interceptors.base import AroundInterceptor, final_code

REQUEST_ID_HEADER = "x-request-id"


def _text(value: str | bytes) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


class RequestContextInterceptor(AroundInterceptor):
    def __init__(self, *, access_log: bool = True) -> None:
        super().__init__()
        self._access_log = access_log
        self._streams: set[str] = set()  # methods whose answer is a stream

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.response_streaming:
            self._streams.add(method)
        return super().wrap(handler, method)

    @asynccontextmanager
    async def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AsyncIterator[None]:
        candidate = user_agent = None
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_HEADER and candidate is None:
                candidate = _text(value)
            elif key == "user-agent" and user_agent is None:
                user_agent = _text(value)
        request_id = request_context.accept_or_make_request_id(candidate)
        request_context.begin(request_id, method, user_agent=user_agent)
        headers = ((REQUEST_ID_HEADER, request_id), *request_context.response_headers())
        if method in self._streams:
            await context.send_initial_metadata(headers)
        else:
            request_context.hold_headers(headers)  # sent with the answer (or the error)
        started = time.perf_counter()
        outcome: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            held = request_context.take_held_headers()  # None once the error took them
            if held is not None and not isinstance(
                outcome, asyncio.CancelledError | aio.AbortError
            ):
                await context.send_initial_metadata(held)
            if self._access_log:
                logs.access_log(
                    method,
                    final_code(context, outcome).name,
                    round((time.perf_counter() - started) * 1000, 2),
                    context.peer(),
                )
