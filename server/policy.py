"""Each procedure's policy — who may call it, its rate-limit group, how a retry is recognised —
read from the contract.

The protos declare it with method options, each API version with its own
(protos/hustle/v1/options.proto, protos/hustle/v2/options.proto); this module reads them once
from the descriptors of the services the server registers, so the rule a client sees in the
contract is the rule the server enforces. The interceptors then treat every version alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any

from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

from hustle.v1 import options_pb2 as v1
from hustle.v2 import options_pb2 as v2


class Access(Enum):
    PUBLIC = "public"
    USER = "user"
    ADMIN = "admin"


class Group(Enum):
    AUTH = "auth"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    UPLOAD = "upload"
    MESSAGE = "message"  # hustle.v2 only


class Retry(Enum):
    """How the idempotency interceptor recognises a retry (server/interceptors/idempotency.py)."""

    NONE = "none"
    HEADER = "header"  # hustle.v1: the `idempotency-key` metadata header
    REQUEST_ID = "request_id"  # hustle.v2: the request's `request_id` field (AIP-155)


@dataclass(frozen=True, slots=True)
class Policy:
    access: Access
    group: Group
    fail_closed: bool
    retry: Retry = Retry.NONE
    # changes something (not `idempotency_level = NO_SIDE_EFFECTS`): refused to an account
    # that is not active (HX405)
    mutation: bool = True

    @property
    def idempotency_key(self) -> bool:
        """Honours the `idempotency-key` header (hustle.v1)."""
        return self.retry is Retry.HEADER


@dataclass(frozen=True, slots=True)
class _Declared:
    """A method's options as one API version states them (0: not stated)."""

    access: int
    group: int
    fail_closed: bool
    retry: Retry


def _v1(options: MethodOptions) -> _Declared:
    return _Declared(
        options.Extensions[v1.access],
        options.Extensions[v1.rate_limit_group],
        options.Extensions[v1.rate_limit_fail_closed],
        Retry.HEADER if options.Extensions[v1.idempotency_key] else Retry.NONE,
    )


def _v2(options: MethodOptions) -> _Declared:
    by_request_id = options.Extensions[v2.idempotency] == v2.IDEMPOTENCY_REQUEST_ID
    return _Declared(
        options.Extensions[v2.access],
        options.Extensions[v2.rate_limit_group],
        options.Extensions[v2.rate_limit_fail_closed],
        Retry.REQUEST_ID if by_request_id else Retry.NONE,
    )


def _values(module: Any, prefix: str, members: type[Enum]) -> dict[int, Any]:
    """{ACCESS_PUBLIC: Access.PUBLIC, ...}: an options enum's values to ours, by name (a value a
    version does not have, such as v2's MESSAGE group in v1, is left out)."""
    return {
        getattr(module, f"{prefix}_{m.name}"): m
        for m in members
        if hasattr(module, f"{prefix}_{m.name}")
    }


# package -> how its options are read, and what their values mean (both versions number their
# enums alike, but each is read by name from its own module)
_VERSIONS: dict[
    str, tuple[Callable[[MethodOptions], _Declared], dict[int, Any], dict[int, Any]]
] = {
    "hustle.v1": (_v1, _values(v1, "ACCESS", Access), _values(v1, "RATE_LIMIT_GROUP", Group)),
    "hustle.v2": (_v2, _values(v2, "ACCESS", Access), _values(v2, "RATE_LIMIT_GROUP", Group)),
}


def policy_of(method: MethodDescriptor) -> Policy:
    package = method.containing_service.file.package
    version = _VERSIONS.get(package)
    if version is None:
        raise ValueError(f"{method.full_name}: no policy options known for package {package}")
    read, accesses, groups = version
    options = method.GetOptions()
    declared = read(options)
    access: Access = accesses.get(declared.access, Access.USER)  # unstated: the safe default
    group: Group
    if declared.group in groups:
        group = groups[declared.group]
    elif access is Access.ADMIN:
        group = Group.ADMIN
    elif options.idempotency_level == MethodOptions.NO_SIDE_EFFECTS:
        group = Group.READ
    else:
        group = Group.WRITE
    fail_closed = declared.fail_closed or group is Group.ADMIN
    retry = declared.retry
    if retry is not Retry.NONE and (
        access is Access.PUBLIC or method.server_streaming or method.client_streaming
    ):
        raise ValueError(
            f"{method.full_name}: retries are recognised per user, in unary calls only"
        )
    if retry is Retry.REQUEST_ID:
        request_id = method.input_type.fields_by_name.get("request_id")
        if request_id is None or request_id.type != FieldDescriptor.TYPE_STRING:
            raise ValueError(
                f"{method.full_name}: IDEMPOTENCY_REQUEST_ID needs `string request_id`"
            )
    mutation = options.idempotency_level != MethodOptions.NO_SIDE_EFFECTS
    return Policy(access, group, fail_closed, retry, mutation)


def policies(services: Iterable[ServiceDescriptor]) -> Mapping[str, Policy]:
    """'/hustle.v1.AuthService/SignIn' -> its Policy, for every method of `services`."""
    return MappingProxyType(
        {
            f"/{service.full_name}/{method.name}": policy_of(method)
            for service in services
            for method in service.methods
        }
    )
