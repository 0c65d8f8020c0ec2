"""Report unexpected exceptions to Sentry, once each, with the call's request id and user.

Installed only when SENTRY_DSN is set. It sits inside the error mapping (which would otherwise
turn the exception into a status before Sentry saw it); typed errors are not reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from grpc import aio

from server import errors, observability
from server.interceptors.base import AroundInterceptor


class SentryInterceptor(AroundInterceptor):
    @asynccontextmanager
    async def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AsyncIterator[None]:
        try:
            yield
        except (aio.AbortError, asyncio.CancelledError, errors.HxError):
            raise
        except Exception as exc:
            if errors.from_db_error(exc) is None:
                observability.capture_exception(exc)
            raise
