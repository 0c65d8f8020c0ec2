"""Deprecation and sunset notices on every response of a deprecated API version.

Once an API version has a deprecation date (and later a sunset date: settings
`V1_DEPRECATED_AT`, `V1_SUNSET_AT`, `V1_DEPRECATION_LINK`), each response of its procedures
says so the way an HTTP API does, in the response headers (gRPC initial metadata):

    deprecation: @1798761600                                    RFC 9745: a Structured Field Date
    sunset: Fri, 31 Dec 2027 23:59:59 GMT                       RFC 8594: an HTTP-date
    link: <https://...>; rel="deprecation"; type="text/html"    RFC 9745 §3 (and rel="sunset")

A date may be in the future ("will be deprecated") or the past ("has been"). Headers go out on
every call of the version, errors included, before the handler runs. Other packages (the next
version, health, reflection) are untouched, and with nothing configured this interceptor is not
installed at all.

The notices themselves (`Notice`, `notices_from`) live in server/versions.py, where
GetServerInfo reads them too.

gRPC sends initial metadata once, and the request-context interceptor sends it (with the
request id), so this one runs outside it and hands it the headers through
`server.request_context.adding_response_headers`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from grpc import aio

from server import request_context
from server.config import Settings
from server.interceptors.base import AroundInterceptor, split_method
from server.versions import Notice, notices_from

__all__ = ["DeprecationInterceptor", "Notice", "notices_from"]


class DeprecationInterceptor(AroundInterceptor):
    def __init__(self, notices: Mapping[str, Notice]) -> None:
        super().__init__()
        self._headers = {package: notice.headers() for package, notice in notices.items()}

    @classmethod
    def configured(cls, settings: Settings) -> list[aio.ServerInterceptor]:
        """The interceptor when some version is deprecated; none otherwise (no cost per call)."""
        notices = notices_from(settings)
        return [cls(notices)] if notices else []

    @asynccontextmanager
    async def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AsyncIterator[None]:
        service, _ = split_method(method)
        headers = self._headers.get(service.rpartition(".")[0])
        if headers is None:
            yield
            return
        with request_context.adding_response_headers(headers):
            yield
