"""Report unexpected exceptions to Sentry, once each, with the call's request id and user, and
wrap each call in a performance transaction (sampled by SENTRY_TRACES_SAMPLE_RATE).

Installed only when SENTRY_DSN is set. It sits inside the error mapping (which would otherwise
turn the exception into a status before Sentry saw it); typed errors are not reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc import aio

from server import errors, observability
from server.interceptors.base import AroundInterceptor, metadata_value


class SentryInterceptor(AroundInterceptor):
    @asynccontextmanager
    async def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AsyncIterator[None]:
        trace = {k: v for k in ("sentry-trace", "baggage") if (v := metadata_value(context, k))}
        with observability.call_transaction("grpc.server", method, trace) as transaction:
            code: grpc.StatusCode | None = None
            try:
                yield
            except errors.HxError as exc:
                code = exc.status
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except aio.AbortError:
                raise
            except Exception as exc:
                mapped = errors.from_db_error(exc)
                code = mapped.status if mapped else grpc.StatusCode.INTERNAL
                if mapped is None:
                    observability.capture_exception(exc)
                raise
            finally:
                if transaction is not None:
                    current: grpc.StatusCode | None = context.code()  # None until set
                    final = code or current or grpc.StatusCode.OK
                    transaction.set_status(observability.span_status(final))
