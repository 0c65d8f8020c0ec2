"""Retries, as the contract declares them: a procedure whose policy says how a retry is
recognised (server/policy.py's `Retry`) gets the first call's answer when it is sent again.

- hustle.v1, `(hustle.v1.idempotency_key) = true`: the `idempotency-key` metadata header.
- hustle.v2, `(hustle.v2.idempotency) = IDEMPOTENCY_REQUEST_ID`: the request's `request_id`
  field (AIP-155; v2 ignores the header). An empty `request_id` turns retry detection off for
  the call; one that is not a UUID is HX301 naming `request_id`.

The call runs inside the transaction that claims the key (server/idempotency.py); the domain's
own transaction nests in it as a savepoint, so the change, the key and the response it produced
commit together. A retry with the key gets that response without running the procedure again.
Procedures without the option ignore both. Runs after admission (keys are per user).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc import aio

from server import caller, idempotency, validation
from server.db import Database
from server.errors import HxError, invalid_fields
from server.interceptors.base import Call, UnaryInterceptor, metadata_value
from server.policy import Policy, Retry

REQUEST_ID = "request_id"


def response_types(services: tuple[ServiceDescriptor, ...]) -> dict[str, type[Message]]:
    """'/pkg.Service/Method' -> its response message class, for every method of `services`."""
    return {
        f"/{service.full_name}/{method.name}": GetMessageClass(method.output_type)
        for service in services
        for method in service.methods
    }


class _Refused(Exception):
    """Raised to roll back a call made only to list a request's other invalid fields."""


class IdempotencyInterceptor(UnaryInterceptor):
    def __init__(
        self,
        db: Database,
        policies: Mapping[str, Policy],
        responses: Mapping[str, type[Message]],
    ) -> None:
        super().__init__()
        self._db = db
        self._retry = {
            method: policy.retry
            for method, policy in policies.items()
            if policy.retry is not Retry.NONE
        }
        self._responses = {method: responses[method] for method in self._retry}

    def wants(self, method: str) -> bool:
        return method in self._retry

    async def handle(
        self, method: str, request: Any, context: aio.ServicerContext[Any, Any], call: Call
    ) -> Any:
        if self._retry[method] is Retry.REQUEST_ID:
            field = REQUEST_ID
            key: str | None = request.request_id or None
            if key is not None:
                try:
                    validation.request_id(key, REQUEST_ID)
                except HxError as malformed:
                    return await self._refuse(malformed, request, context, call)
        else:
            field = idempotency.HEADER
            key = metadata_value(context, idempotency.HEADER)
        if key is None:
            return await call(request, context)

        async def run() -> Message:
            response: Message = await call(request, context)
            return response

        return await idempotency.once(
            self._db,
            caller.current().user_id,
            method,
            key,
            request,
            self._responses[method],
            run,
            field=field,
        )

    async def _refuse(
        self,
        malformed: HxError,
        request: Any,
        context: aio.ServicerContext[Any, Any],
        call: Call,
    ) -> Any:
        """A malformed request_id is refused, together with the request's other invalid fields
        (hustle.v2 lists them all): the servicer checks them, `request_id` included. Should it
        find nothing wrong, whatever it did is rolled back before the refusal."""
        try:
            async with self._db.transaction():
                await call(request, context)
                raise _Refused
        except _Refused:
            raise malformed from None
        except HxError as exc:
            if exc.code != "HX301":
                raise malformed from None
            if any(v.field == REQUEST_ID for v in exc.violations):
                raise
            raise invalid_fields([*malformed.violations, *exc.violations]) from None
