"""Turn whatever a call raised into a typed gRPC status, and leak nothing internal.

- `HxError` → its status code, message and rich details (`server.errors.to_rpc_status`).
- A database error that stands for a rule (by SQLSTATE or constraint name) → the same.
- Anything else → INTERNAL with ErrorInfo HX901 and no detail; the exception is logged with the
  call's request id (grpc.aio itself would send the exception's class and text to the client).

An UNAVAILABLE status goes trailers-only (the call's held headers join its trailing metadata),
so that a client's retry policy may retry it; see server/interceptors/request_context.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc import aio
from loguru import logger

from server import errors, request_context
from server.interceptors.base import AroundInterceptor


async def _abort(context: aio.ServicerContext[Any, Any], status: grpc.Status) -> None:
    held = request_context.take_held_headers()
    if held is not None and status.code is grpc.StatusCode.UNAVAILABLE:
        await context.abort(status.code, status.details, (*status.trailing_metadata, *held))
    if held is not None:
        await context.send_initial_metadata(held)
    await context.abort_with_status(status)


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
            await _abort(context, errors.to_rpc_status(exc))
        except Exception as exc:
            mapped = errors.from_db_error(exc)
            if mapped is None:
                logger.opt(exception=exc).error(f"unhandled error in {method}")
                mapped = errors.HxError("HX901")
            await _abort(context, errors.to_rpc_status(mapped))
