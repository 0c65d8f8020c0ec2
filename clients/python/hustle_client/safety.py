"""Which calls are safe to send again, read from the contract, and gRPC's own retry policy for
them (the channel's service config).

Each RPC says in the protos whether repeating it is safe:

- `idempotency_level = NO_SIDE_EFFECTS` (reads) and `IDEMPOTENT` (mutations that are idempotent
  by nature, e.g. UpdateProfile): safe as they are;
- hustle.v2's `(hustle.v2.idempotency) = IDEMPOTENCY_REQUEST_ID`: safe with the same
  `request_id` (AIP-155), which the client fills in when the caller left it empty;
- hustle.v1's `(hustle.v1.idempotency_key) = true`: safe with the same `idempotency-key`
  header, which the client adds when the caller sent none;
- anything else (SignIn, SignUp, SignOut, ...): may do its work twice, so never retried.

The safe ones retry UNAVAILABLE (a refused or dropped connection, a server restarting or
draining, HX902) with exponential backoff, and wait for the channel to be ready instead of
failing while the server is down (`waitForReady`), within their deadline. gRPC resends the
same bytes, so a retry carries the same `request_id`, `idempotency-key` and `x-request-id`.
"""

from __future__ import annotations

import enum
import importlib
import json
import pkgutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

import hustle.v1
import hustle.v2
from hustle.v1 import options_pb2 as v1_options
from hustle.v2 import options_pb2 as v2_options


class Retry(enum.Enum):
    """How a call may be sent again."""

    NEVER = "never"  # it may do its work twice
    SAFE = "safe"  # NO_SIDE_EFFECTS or IDEMPOTENT: as it is
    REQUEST_ID = "request_id"  # hustle.v2: with the same `request_id` field
    IDEMPOTENCY_KEY = "idempotency_key"  # hustle.v1: with the same `idempotency-key` header

    @property
    def retried(self) -> bool:
        return self is not Retry.NEVER


def retry_of(method: MethodDescriptor) -> Retry:
    """What the contract says of repeating `method`."""
    options = method.GetOptions()
    if options.idempotency_level in (MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT):
        return Retry.SAFE
    package = method.containing_service.file.package
    if package == "hustle.v2" and (
        options.Extensions[v2_options.idempotency] == v2_options.IDEMPOTENCY_REQUEST_ID
    ):
        field = method.input_type.fields_by_name.get("request_id")
        if field is None or field.type != FieldDescriptor.TYPE_STRING:
            raise ValueError(
                f"{method.full_name}: IDEMPOTENCY_REQUEST_ID needs `string request_id`"
            )
        return Retry.REQUEST_ID
    if package == "hustle.v1" and options.Extensions[v1_options.idempotency_key]:
        return Retry.IDEMPOTENCY_KEY
    return Retry.NEVER


def hustle_services() -> Iterator[ServiceDescriptor]:
    """Every service of the generated hustle.v1 and hustle.v2 packages (new ones included, once
    `make protos` has generated them)."""
    for package in (hustle.v1, hustle.v2):
        for module in pkgutil.iter_modules(package.__path__):
            if module.name.endswith("_pb2"):
                file = importlib.import_module(f"{package.__name__}.{module.name}").DESCRIPTOR
                yield from file.services_by_name.values()


def retries(services: Iterable[ServiceDescriptor] | None = None) -> dict[str, Retry]:
    """'/hustle.v2.TaskService/GetTask' -> how it may be retried, for every method."""
    return {
        f"/{service.full_name}/{method.name}": retry_of(method)
        for service in (hustle_services() if services is None else services)
        for method in service.methods
    }


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """gRPC's retry policy for the safe calls (gRFC A6). gRPC caps attempts at 5; each pause is
    random between 0 and the current backoff, which grows by `multiplier` up to `max_backoff`.
    Throttling stops retries on a channel whose calls mostly fail (retry storms): each failure
    takes a token, each success gives back `token_ratio`, and retries stop below half."""

    max_attempts: int = 5
    initial_backoff_seconds: float = 0.1
    max_backoff_seconds: float = 2.0
    multiplier: float = 2.0
    max_tokens: int = 10
    token_ratio: float = 0.1

    def __post_init__(self) -> None:
        if not 2 <= self.max_attempts <= 5:
            raise ValueError("max_attempts is 2 to 5 (gRPC caps it at 5)")
        if not 0 < self.initial_backoff_seconds <= self.max_backoff_seconds:
            raise ValueError("backoffs must be positive, the initial one not above the maximum")


def service_config(
    services: Iterable[ServiceDescriptor] | None = None, policy: RetryPolicy | None = None
) -> dict[str, Any]:
    """The channel's service config: the retry policy for every safe method, nothing for the
    others (gRPC's default: no retries, fail at once while the server is unreachable)."""
    policy = policy or RetryPolicy()
    safe = sorted(name for name, retry in retries(services).items() if retry.retried)
    names = [dict(zip(("service", "method"), n.lstrip("/").split("/"), strict=True)) for n in safe]
    return {
        "methodConfig": [
            {
                "name": names,
                "waitForReady": True,
                "retryPolicy": {
                    "maxAttempts": policy.max_attempts,
                    "initialBackoff": f"{policy.initial_backoff_seconds}s",
                    "maxBackoff": f"{policy.max_backoff_seconds}s",
                    "backoffMultiplier": policy.multiplier,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
        "retryThrottling": {"maxTokens": policy.max_tokens, "tokenRatio": policy.token_ratio},
    }


def channel_options(policy: RetryPolicy | None = None) -> list[tuple[str, Any]]:
    """Channel arguments that turn the retry policy on for every hustle method."""
    return [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(service_config(policy=policy))),
        # ours, not one a DNS TXT record might bring
        ("grpc.service_config_disable_resolution", 1),
    ]
