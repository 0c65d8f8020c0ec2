"""Small tools the tests share: reading rich error details, free ports, waiting for a state."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def error_details(error: grpc.aio.AioRpcError) -> dict[str, object]:
    """ErrorInfo / BadRequest / RetryInfo carried by a failed call, by their message names."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: dict[str, object] = {}
    if status is None:
        return found
    for detail in status.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.DESCRIPTOR.name] = message
    return found


async def eventually(
    probe: Callable[[], Awaitable[T] | T],
    accept: Callable[[T], bool],
    *,
    timeout: float = 15.0,
    what: str | Callable[[], str] = "",
) -> T:
    """Poll `probe` (sync or async) until `accept(result)`; fail with the last result after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = probe()
        result: T = (await outcome) if inspect.isawaitable(outcome) else outcome  # type: ignore[assignment]
        if accept(result):
            return result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(
                f"timed out waiting for {described or 'condition'}; last: {result!r}"
            )
        await asyncio.sleep(0.05)


class PrivateRedis:
    """A redis-server of this test's own, which the test may stop and start again."""

    def __init__(self, tmp: str) -> None:
        self.port = free_port()
        self.dir = tmp
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (make test installs it)"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
