"""The ceiling: a bare grpc.aio echo in the server's own process model, for `make bench`.

`python -m bench.echo` runs SERVER_PROCESSES children on GRPC_PORT with SO_REUSEPORT through the
same supervisor as `python -m server serve`, but each child serves only an echo of
`hustle.v1.SystemService/GetServerInfo` (the request's bytes back, never parsed) plus reflection so
that ghz resolves the method exactly as it does against the real server. No interceptors, no
database, no Redis: whatever the real server falls short of this is the cost of the product.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

import grpc
from grpc import aio

from hustle.v1 import system_pb2
from server import reflection, supervisor
from server.config import Settings, load_settings

SERVICE = system_pb2.DESCRIPTOR.services_by_name["SystemService"].full_name


async def _echo(request: bytes, _context: aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def serve(
    settings: Settings, *, reuse_port: bool, on_ready: Callable[[int, int], None] | None = None
) -> None:
    server = aio.server(options=[("grpc.so_reuseport", 1 if reuse_port else 0)])
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"GetServerInfo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    reflection.enable(server, (SERVICE,))
    port = server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if on_ready is not None:
        on_ready(port, 0)
    await stop.wait()
    await server.stop(settings.shutdown_grace_seconds)


if __name__ == "__main__":
    sys.exit(supervisor.run(load_settings(), target="bench.echo:serve"))
