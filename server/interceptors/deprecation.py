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

gRPC sends initial metadata once, and the request-context interceptor sends it (with the
request id), so this one runs outside it and hands it the headers through
`server.request_context.adding_response_headers`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from grpc import aio

from server import request_context
from server.config import Settings
from server.interceptors.base import AroundInterceptor, split_method

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Notice:
    """What one API version's responses say about its end."""

    deprecated_at: datetime
    sunset_at: datetime | None = None
    link: str | None = None

    def headers(self) -> Headers:
        headers = [("deprecation", f"@{int(self.deprecated_at.timestamp())}")]
        if self.sunset_at is not None:
            headers.append(("sunset", format_datetime(self.sunset_at.astimezone(UTC), usegmt=True)))
        if self.link is not None:
            rels = ["deprecation"] if self.sunset_at is None else ["deprecation", "sunset"]
            headers.append(
                ("link", ", ".join(f'<{self.link}>; rel="{rel}"; type="text/html"' for rel in rels))
            )
        return tuple(headers)


def notices_from(settings: Settings) -> dict[str, Notice]:
    """Each API package with a deprecation date set -> its notice."""
    if settings.v1_deprecated_at is None:
        return {}
    link = str(settings.v1_deprecation_link) if settings.v1_deprecation_link else None
    return {"hustle.v1": Notice(settings.v1_deprecated_at, settings.v1_sunset_at, link)}


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
