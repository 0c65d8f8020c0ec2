"""`python -m server serve`: N server processes sharing one port (SO_REUSEPORT).

The parent only supervises: it checks the port is free, spawns the children, waits until each
reports it is serving, prints where to connect, forwards SIGTERM/SIGINT, and exits 0 when every
child drained cleanly. A child that dies on its own takes the group down (exit 1), so that the
platform restarts a whole, healthy machine rather than a half-serving one.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Protocol, cast

from loguru import logger

from server import logs
from server.config import Settings, load_settings
from server.lifecycle import die_with_parent

READY_TIMEOUT_SECONDS = 90.0


class ServeFunction(Protocol):
    async def __call__(
        self,
        settings: Settings,
        *,
        reuse_port: bool,
        on_ready: Callable[[int, int], None] | None = None,
    ) -> None: ...


# What each child runs: "module:function", an `async def (settings, *, reuse_port, on_ready)`.
SERVE = "server.app:serve"


def _child(index: int, reuse_port: bool, ready: Connection, target: str) -> None:
    die_with_parent()  # the supervisor killed outright: stop serving, do not hold the port
    settings = load_settings()
    module, _, name = target.partition(":")
    served = importlib.import_module(module)
    serve: ServeFunction = getattr(served, name)
    versions: tuple[str, ...] = tuple(getattr(served, "API_VERSIONS", ()))

    def on_ready(grpc_port: int, http_port: int) -> None:
        ready.send((index, grpc_port, http_port, versions))
        ready.close()

    asyncio.run(serve(settings, reuse_port=reuse_port, on_ready=on_ready))


def _port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (a plain bind, without SO_REUSEPORT, succeeds)."""
    if port == 0:
        return True
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def run(settings: Settings, target: str = SERVE) -> int:
    """Serve with `settings.server_processes` children, each running `target` (see SERVE)."""
    logs.configure_logging(settings)
    n = settings.server_processes
    for name, port in (("GRPC_PORT", settings.grpc_port), ("HTTP_PORT", settings.http_port)):
        if n > 1 and port == 0:
            logger.error(f"{name}=0 (any free port) needs SERVER_PROCESSES=1")
            return 2
        if not _port_is_free(settings.grpc_host, port):
            logger.error(
                f"{name} {port} is already in use on {settings.grpc_host}; is a server running?"
            )
            return 2

    spawn = multiprocessing.get_context("spawn")
    children: list[BaseProcess] = []
    pipes: list[Connection] = []
    for index in range(n):
        reader, writer = spawn.Pipe(duplex=False)
        child = spawn.Process(
            target=_child, args=(index, n > 1, writer, target), name=f"hustle-server-{index}"
        )
        child.start()
        writer.close()
        children.append(child)
        pipes.append(reader)

    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    ports = _wait_ready(pipes)
    if ports is None:
        forward(signal.SIGTERM, None)
        _reap(children, settings.shutdown_grace_seconds)
        logger.error("a server process failed to start; see its log above")
        return 1
    grpc_port, http_port, versions = ports
    if target == SERVE:
        logger.info(
            f"serving {', '.join(versions)} with {n} process(es) on "
            f"grpc://{settings.grpc_host}:{grpc_port} and http://{settings.grpc_host}:{http_port} "
            f"(/health, /metrics). Try: grpcurl -plaintext localhost:{grpc_port} "
            "hustle.v1.SystemService/GetServerInfo"
        )
    else:
        logger.info(
            f"serving {target} with {n} process(es) on grpc://{settings.grpc_host}:{grpc_port}"
        )
    sys.stdout.flush()

    running: dict[int, BaseProcess] = {child.sentinel: child for child in children}
    while running:
        for sentinel in wait(list(running), timeout=1.0):
            ended = running.pop(cast(int, sentinel))
            ended.join()
            if ended.pid is not None:
                from server import metrics  # only now: the supervisor itself serves nothing

                metrics.mark_process_dead(ended.pid)
            if not stopping:
                logger.error(f"{ended.name} exited unexpectedly (code {ended.exitcode}); stopping")
                forward(signal.SIGTERM, None)
    _reap(children, settings.shutdown_grace_seconds)
    failed = [c for c in children if c.exitcode != 0]
    for bad in failed:
        logger.error(f"{bad.name} ended with exit code {bad.exitcode}")
    return 1 if failed else 0


def _wait_ready(pipes: list[Connection]) -> tuple[int, int, tuple[str, ...]] | None:
    """The (grpc, http) ports and the API versions served, once every child is serving; None
    when one died first."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    waiting = list(pipes)
    ports: tuple[int, int, tuple[str, ...]] | None = None
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        for ready in wait(waiting, timeout=remaining):
            pipe = cast(Connection, ready)
            waiting.remove(pipe)
            try:
                _, grpc_port, http_port, versions = pipe.recv()
            except EOFError:
                return None  # the child exited before it was ready
            ports = (grpc_port, http_port, versions)
    return ports


def _reap(children: list[BaseProcess], grace: float) -> None:
    deadline = time.monotonic() + grace + 10
    for child in children:
        child.join(timeout=max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            logger.error(f"{child.name} did not stop in time; killing it")
            child.kill()
            child.join()
