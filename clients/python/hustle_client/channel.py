"""Channels to the Hustle server that send what every call needs: the session token, an
`x-request-id`, and the retry key of the mutations whose retries the server recognises; with
gRPC's own retry policy for the calls that are safe to repeat (hustle_client.safety)."""

from __future__ import annotations

import collections
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc import aio

from hustle_client.safety import Retry, RetryPolicy, channel_options, retries

Token = str | Callable[[], str | None] | None
Pairs = tuple[tuple[str, str | bytes], ...]

REQUEST_ID_HEADER = "x-request-id"
IDEMPOTENCY_KEY_HEADER = "idempotency-key"  # hustle.v1's retry key


class Calls:
    """What to add to each call: shared by the asyncio and the blocking channels."""

    def __init__(self, token: Token) -> None:
        self.token = token
        self._retries = retries()

    def current_token(self) -> str | None:
        return self.token() if callable(self.token) else self.token

    def metadata(self, method: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> Pairs:
        pairs = tuple(metadata or ())
        keys = {key for key, _ in pairs}
        added: list[tuple[str, str | bytes]] = []
        token = self.current_token()
        if token and "authorization" not in keys:
            added.append(("authorization", f"Bearer {token}"))
        if REQUEST_ID_HEADER not in keys:
            added.append((REQUEST_ID_HEADER, uuid.uuid4().hex))
        if (
            self._retries.get(method) is Retry.IDEMPOTENCY_KEY
            and IDEMPOTENCY_KEY_HEADER not in keys
        ):
            added.append((IDEMPOTENCY_KEY_HEADER, str(uuid.uuid4())))
        return (*pairs, *added)

    def request(self, method: str, request: Any) -> Any:
        """The request, with a new `request_id` when the RPC takes one and it is empty."""
        if self._retries.get(method) is not Retry.REQUEST_ID or request.request_id:
            return request
        assert isinstance(request, Message)
        filled = type(request)()
        filled.CopyFrom(request)
        filled.request_id = str(uuid.uuid4())  # type: ignore[attr-defined]
        return filled


def _name(method: str | bytes) -> str:
    return method.decode() if isinstance(method, bytes) else method


# ---- grpc.aio -------------------------------------------------------------------------------


def _aio_details(calls: Calls, details: aio.ClientCallDetails) -> aio.ClientCallDetails:
    pairs = calls.metadata(_name(details.method), details.metadata)
    return aio.ClientCallDetails(
        details.method, details.timeout, aio.Metadata(*pairs), details.credentials,
        details.wait_for_ready,
    )  # fmt: skip


class _AioUnaryUnary(aio.UnaryUnaryClientInterceptor):
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        request = self._calls.request(_name(details.method), request)
        return await continuation(_aio_details(self._calls, details), request)


class _AioUnaryStream(aio.UnaryStreamClientInterceptor):
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        request = self._calls.request(_name(details.method), request)
        return await continuation(_aio_details(self._calls, details), request)


class _AioStreamUnary(aio.StreamUnaryClientInterceptor):
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_aio_details(self._calls, details), requests)


class _AioStreamStream(aio.StreamStreamClientInterceptor):
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_aio_details(self._calls, details), requests)


def aio_channel(
    target: str,
    *,
    token: Token = None,
    credentials: grpc.ChannelCredentials | None = None,
    retry: RetryPolicy | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> aio.Channel:
    """An asyncio channel to the server at `target` ("host:port"): TLS with `credentials`,
    plaintext without. `token` is the session's access token, or a function that returns the
    current one (after RefreshSession)."""
    calls = Calls(token)
    interceptors = [
        _AioUnaryUnary(calls), _AioUnaryStream(calls), _AioStreamUnary(calls),
        _AioStreamStream(calls),
    ]  # fmt: skip
    every = [*channel_options(retry), *options]
    if credentials is None:
        return aio.insecure_channel(target, options=every, interceptors=interceptors)
    return aio.secure_channel(target, credentials, options=every, interceptors=interceptors)


# ---- blocking grpc --------------------------------------------------------------------------


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    pass


class _Interceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    def _details(self, details: Any) -> Any:
        method = _name(details.method)
        return _Details(
            method, details.timeout, self._calls.metadata(method, details.metadata),
            details.credentials, getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )  # fmt: skip

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(
            self._details(details), self._calls.request(_name(details.method), request)
        )

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(
            self._details(details), self._calls.request(_name(details.method), request)
        )

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def channel(
    target: str,
    *,
    token: Token = None,
    credentials: grpc.ChannelCredentials | None = None,
    retry: RetryPolicy | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """The same as `aio_channel`, for blocking code."""
    every = [*channel_options(retry), *options]
    if credentials is None:
        plain = grpc.insecure_channel(target, options=every)
    else:
        plain = grpc.secure_channel(target, credentials, options=every)
    return grpc.intercept_channel(plain, _Interceptor(Calls(token)))
