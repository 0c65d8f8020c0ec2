"""Request bytes that are not the method's message become INVALID_ARGUMENT (HX301), like any
other bad input.

grpc.aio decodes a request before any interceptor runs, and a decode error there answers
UNKNOWN with the parser's class and text, skips every interceptor (no request id, access line or
metric) and logs a traceback: an unauthenticated way to flood logs and Sentry. Here each method's
decoder is wrapped so that a failure yields an `Undecodable` marker instead of raising, and the
marker is refused inside the chain (after the request context, metrics and error mapping, before
admission), so the call is answered, counted and logged as every other call is. The refusals
themselves are logged once per method per minute, with how many there were.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc import aio
from loguru import logger

from server import metrics
from server.errors import HxError
from server.interceptors.base import Behavior, _CachingInterceptor, split_method

LOG_EVERY_SECONDS = 60.0


class Undecodable:
    """What a request decoder returns for bytes that are not its message."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _lenient(decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def lenient(data: bytes) -> Any:
        try:
            return decode(data)
        except Exception as exc:  # protobuf's DecodeError, or anything a decoder raises
            return Undecodable(exc)

    return lenient


class DecodingInterceptor(_CachingInterceptor):
    def __init__(self) -> None:
        super().__init__()
        self._last_logged: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def _refuse(self, method: str, found: Undecodable) -> HxError:
        service, name = split_method(method)
        metrics.RPC_UNDECODABLE.labels(service, name).inc()
        now = time.monotonic()
        self._unlogged[method] = self._unlogged.get(method, 0) + 1
        if now - self._last_logged.get(method, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
            self._last_logged[method] = now
            count = self._unlogged.pop(method)
            logger.bind(
                method=method, refused=count, error=f"{type(found.error).__name__}: {found.error}"
            ).warning("undecodable requests refused (logged at most once a minute per method)")
        return HxError("HX301", "The request is not a valid message for this procedure.")

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.request_deserializer is None:
            return handler
        decode = _lenient(handler.request_deserializer)

        def request(message: Any) -> Any:
            if isinstance(message, Undecodable):
                raise self._refuse(method, message)
            return message

        async def requests(messages: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for message in messages:
                yield request(message)

        def unary_response(behavior: Behavior, streamed: bool) -> Behavior:
            async def call(received: Any, context: aio.ServicerContext[Any, Any]) -> Any:
                incoming = requests(received) if streamed else request(received)
                return await behavior(incoming, context)

            return call

        def streamed_response(behavior: Behavior, streamed: bool) -> Behavior:
            async def call(
                received: Any, context: aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                incoming = requests(received) if streamed else request(received)
                result = behavior(incoming, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:  # a coroutine that writes with context.write()
                    await result

            return call

        ser = handler.response_serializer
        if handler.unary_unary:
            behavior = unary_response(handler.unary_unary, False)
            return grpc.unary_unary_rpc_method_handler(behavior, decode, ser)
        if handler.stream_unary:
            behavior = unary_response(handler.stream_unary, True)
            return grpc.stream_unary_rpc_method_handler(behavior, decode, ser)
        if handler.unary_stream:
            behavior = streamed_response(handler.unary_stream, False)
            return grpc.unary_stream_rpc_method_handler(behavior, decode, ser)
        if handler.stream_stream:
            behavior = streamed_response(handler.stream_stream, True)
            return grpc.stream_stream_rpc_method_handler(behavior, decode, ser)
        return handler
