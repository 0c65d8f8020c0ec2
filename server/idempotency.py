"""Retried mutations get the first answer: hustle.v1's `idempotency-key` header and hustle.v2's
`request_id` field, for the procedures whose contract declares them (the idempotency
interceptor calls `once` around them).

The first call with a key runs inside one transaction that also records the key and the
response it produced; a retry with the same key and request gets that response and changes
nothing. A concurrent retry waits on the key's row until the first commits. A key reused with
a different request is refused (HX301, naming the header or the field). Keys live 24 hours, in
one table for both versions, keyed by (user, method, key): the method names the version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

from server.db import Database, Rows
from server.errors import invalid

M = TypeVar("M", bound=Message)
HEADER = "idempotency-key"


@dataclass(frozen=True, slots=True)
class _First:
    request_hash: bytes
    response: bytes | None


_FIRST = Rows("idempotent_response", _First)


async def once(
    db: Database,
    user_id: str,
    method: str,
    key: str,
    request: Message,
    response_type: type[M],
    run: Callable[[], Awaitable[M]],
    *,
    field: str = HEADER,
) -> M:
    """`run()` once per (user, method, key); `field` is where the key came from (errors name it)."""
    if not 1 <= len(key) <= 255:
        raise invalid(field, "must have 1 to 255 characters")
    request_hash = hashlib.sha256(request.SerializeToString(deterministic=True)).digest()
    ids = {"user_id": user_id, "method": method, "key": key}
    async with db.transaction() as tx:
        if await tx.scalar("claim_idempotency_key", bool, request_hash=request_hash, **ids) is None:
            first = await tx.one(_FIRST, **ids)
            if first is None or first.response is None:  # expired meanwhile: not a retry we know
                raise invalid(field, "has expired; use a new one")
            if first.request_hash != request_hash:
                raise invalid(field, "was used with a different request")
            return response_type.FromString(first.response)
        response = await run()
        await tx.execute("store_idempotent_response", response=response.SerializeToString(), **ids)
    return response
