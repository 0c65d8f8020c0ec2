"""Idempotency keys, as the contract declares them: a procedure with the method option
`(hustle.v1.idempotency_key) = true` honours an `idempotency-key` metadata header.

The call runs inside the transaction that claims the key (server/idempotency.py); the domain's
own transaction nests in it as a savepoint, so the change, the key and the response it produced
commit together. A retry with the key gets that response without running the procedure again.
Procedures without the option ignore the header. Runs after admission (keys are per user).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc import aio

from server import caller, idempotency
from server.db import Database
from server.interceptors.base import Call, UnaryInterceptor, metadata_value
from server.policy import Policy


def response_types(services: tuple[ServiceDescriptor, ...]) -> dict[str, type[Message]]:
    """'/pkg.Service/Method' -> its response message class, for every method of `services`."""
    return {
        f"/{service.full_name}/{method.name}": GetMessageClass(method.output_type)
        for service in services
        for method in service.methods
    }


class IdempotencyInterceptor(UnaryInterceptor):
    def __init__(
        self,
        db: Database,
        policies: Mapping[str, Policy],
        responses: Mapping[str, type[Message]],
    ) -> None:
        super().__init__()
        self._db = db
        self._responses = {
            method: responses[method]
            for method, policy in policies.items()
            if policy.idempotency_key
        }

    def wants(self, method: str) -> bool:
        return method in self._responses

    async def handle(
        self, method: str, request: Any, context: aio.ServicerContext[Any, Any], call: Call
    ) -> Any:
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
        )
