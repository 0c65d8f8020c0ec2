"""Server reflection that also answers for method names, which ghz asks for.

ghz resolves `--call pkg.Service/Method` by asking reflection for the file containing the symbol
`pkg.Service.Method`. grpcio-reflection looks symbols up in the protobuf descriptor pool, and the
upb pool (protobuf 4+) finds services and messages but not methods, so ghz got "Symbol not found"
while grpcurl (which asks for the service) worked. The pool handed to reflection here falls back
from a method to its service; everything else goes to the real pool unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc import aio
from grpc_reflection.v1alpha import reflection

SERVICE_NAME: str = reflection.SERVICE_NAME


class _MethodAwarePool:
    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool

    def FindFileContainingSymbol(self, symbol: str) -> FileDescriptor:
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service_name, _, method = symbol.rpartition(".")
            try:
                service = self._pool.FindServiceByName(service_name)
            except KeyError:
                service = None
            if service is None or method not in service.methods_by_name:
                raise
            return service.file

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def enable(server: aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection (v1alpha, which grpcurl and ghz use) for these services and itself."""
    names = (*service_names, SERVICE_NAME)
    pool = _MethodAwarePool(descriptor_pool.Default())
    reflection.enable_server_reflection(names, server, pool=pool)  # type: ignore[arg-type]
