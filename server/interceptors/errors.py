"""Turn whatever a call raised into a typed gRPC status, and leak nothing internal.

- `HxError` → its status code, message and rich details (`server.errors.to_rpc_status`).
- A database error that stands for a rule (by SQLSTATE or constraint name) → the same.
- Anything else → INTERNAL with ErrorInfo HX901 and no detail; the exception is logged with the
  call's request id (grpc.aio itself would send the exception's class and text to the client).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from grpc import aio
from loguru import logger

from server import errors
from server.interceptors.base import AroundInterceptor


class ErrorMappingInterceptor(AroundInterceptor):
    @asynccontextmanager
    async def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AsyncIterator[None]:
        try:
            yield
        except (aio.AbortError, asyncio.CancelledError):
            raise  # already a status (the handler aborted) or the client went away
        except errors.HxError as exc:
            await context.abort_with_status(errors.to_rpc_status(exc))
        except Exception as exc:
            mapped = errors.from_db_error(exc)
            if mapped is None:
                logger.opt(exception=exc).error(f"unhandled error in {method}")
                mapped = errors.HxError("HX901")
            await context.abort_with_status(errors.to_rpc_status(mapped))
