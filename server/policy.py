"""Each procedure's policy — who may call it, its rate-limit group, how a retry is recognised —
read from the contract.

The protos declare it with method options (protos/hustle/v1/options.proto); this module reads
them once from the descriptors of the services the server registers, so the rule a client sees
in the contract is the rule the server enforces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

from hustle.v1 import options_pb2


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


@dataclass(frozen=True, slots=True)
class Policy:
    access: Access
    group: Group
    fail_closed: bool
    # honours the `idempotency-key` header (server/interceptors/idempotency.py)
    idempotency_key: bool = False


_ACCESS = {
    options_pb2.ACCESS_UNSPECIFIED: Access.USER,
    options_pb2.ACCESS_PUBLIC: Access.PUBLIC,
    options_pb2.ACCESS_USER: Access.USER,
    options_pb2.ACCESS_ADMIN: Access.ADMIN,
}
_GROUP = {
    options_pb2.RATE_LIMIT_GROUP_AUTH: Group.AUTH,
    options_pb2.RATE_LIMIT_GROUP_READ: Group.READ,
    options_pb2.RATE_LIMIT_GROUP_WRITE: Group.WRITE,
    options_pb2.RATE_LIMIT_GROUP_ADMIN: Group.ADMIN,
    options_pb2.RATE_LIMIT_GROUP_UPLOAD: Group.UPLOAD,
}


def policy_of(method: MethodDescriptor) -> Policy:
    options = method.GetOptions()
    access = _ACCESS[options.Extensions[options_pb2.access]]
    declared = options.Extensions[options_pb2.rate_limit_group]
    if declared != options_pb2.RATE_LIMIT_GROUP_UNSPECIFIED:
        group = _GROUP[declared]
    elif access is Access.ADMIN:
        group = Group.ADMIN
    elif options.idempotency_level == MethodOptions.NO_SIDE_EFFECTS:
        group = Group.READ
    else:
        group = Group.WRITE
    fail_closed = options.Extensions[options_pb2.rate_limit_fail_closed] or group is Group.ADMIN
    keyed = options.Extensions[options_pb2.idempotency_key]
    if keyed and (access is Access.PUBLIC or method.server_streaming or method.client_streaming):
        raise ValueError(
            f"{method.full_name}: idempotency keys are per user, for unary procedures only"
        )
    return Policy(access, group, fail_closed, keyed)


def policies(services: Iterable[ServiceDescriptor]) -> Mapping[str, Policy]:
    """'/hustle.v1.AuthService/SignIn' -> its Policy, for every method of `services`."""
    return MappingProxyType(
        {
            f"/{service.full_name}/{method.name}": policy_of(method)
            for service in services
            for method in service.methods
        }
    )
