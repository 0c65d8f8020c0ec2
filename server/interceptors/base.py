"""Server interceptors written as one async context manager around each call, or as one
function in front of a unary handler.

grpc.aio interceptors return a (possibly wrapped) method handler. `AroundInterceptor` wraps
every kind of handler (unary or streaming, request or response) the same way: the call runs
inside `around(method, context, request)`, which may set up context before it and observe or
translate the outcome after it (raising from `__aexit__` replaces the handler's exception).
`request` is the request message of unary-request calls, None for streaming requests.
`UnaryInterceptor` stands in front of the unary-unary handlers of the methods it selects and may
answer without calling them (`handle(method, request, context, call)`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

import grpc
from grpc import aio

Behavior = Callable[[Any, Any], Any]


def split_method(method: str) -> tuple[str, str]:
    """'/hustle.v1.SystemService/GetServerInfo' -> ('hustle.v1.SystemService', 'GetServerInfo')."""
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def metadata_value(context: aio.ServicerContext[Any, Any], key: str) -> str | None:
    """The first value the client sent for a metadata key (keys are lower case)."""
    for item_key, value in context.invocation_metadata() or ():
        if item_key == key:
            return value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return None


def final_code(
    context: aio.ServicerContext[Any, Any], exc: BaseException | None
) -> grpc.StatusCode:
    """The status code a call ended with, as the client will see it."""
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    # None until a code is set (the type stubs say otherwise).
    code: grpc.StatusCode | None = context.code()
    if code is not None:
        return code
    if exc is None:
        return grpc.StatusCode.OK
    return grpc.StatusCode.UNKNOWN


class _CachingInterceptor(aio.ServerInterceptor):
    """Wraps each method's handler once (grpc asks the chain on every call)."""

    def __init__(self) -> None:
        # method -> (its handler, that handler wrapped)
        self._wrapped: dict[
            str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]
        ] = {}

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        found = self._wrapped.get(method)
        if found is None or found[0] is not handler:
            found = self._wrapped[method] = (handler, self.wrap(handler, method))
        return found[1]


Call = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]


class UnaryInterceptor(_CachingInterceptor):
    """Calls `handle` instead of the unary-unary handlers of the methods `wants` selects."""

    def wants(self, method: str) -> bool:
        raise NotImplementedError

    async def handle(
        self, method: str, request: Any, context: aio.ServicerContext[Any, Any], call: Call
    ) -> Any:
        raise NotImplementedError

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.unary_unary is None or not self.wants(method):
            return handler
        behavior = cast(Call, handler.unary_unary)  # grpc.aio handlers are coroutines

        async def call(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            return await self.handle(method, request, context, behavior)

        return grpc.unary_unary_rpc_method_handler(
            call, handler.request_deserializer, handler.response_serializer
        )


class AroundInterceptor(_CachingInterceptor):
    def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        return _wrap(handler, method, self.around)


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    method: str,
    around: Callable[[str, aio.ServicerContext[Any, Any], Any], AbstractAsyncContextManager[None]],
) -> grpc.RpcMethodHandler[Any, Any]:
    def unary(behavior: Behavior, message: bool) -> Behavior:
        async def call(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            async with around(method, context, request if message else None):
                return await behavior(request, context)

        return call

    def streaming(behavior: Behavior, message: bool) -> Behavior:
        async def call(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with around(method, context, request if message else None):
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:  # a coroutine that writes with context.write()
                    await result

        return call

    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary, True), des, ser)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary, False), des, ser)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream, True), des, ser)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            streaming(handler.stream_stream, False), des, ser
        )
    return handler
