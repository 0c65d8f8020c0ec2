"""Small tools the tests share: reading rich error details, free ports, waiting for a state."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
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
    """A redis-server of this test's own, which the test may stop and start again.

    `persistent` turns on the append-only file (as `make run` and the compose file run Redis),
    so that what was queued survives a restart; without it a restart loses everything."""

    def __init__(self, tmp: str, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.dir = tmp
        self.persistent = persistent
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
                "yes" if self.persistent else "no",
                "--appendfsync",
                "everysec",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, "redis-server")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def wait_for_port(port: int, what: str, timeout: float = 30.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what} did not open port {port} within {timeout} s"
                ) from None
            time.sleep(0.05)


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL cluster of the tests' own (initdb in a temporary folder) that a test may stop,
    restart or kill, the way an operator or a crash would, without touching the shared one.

    As root, the cluster runs as the `postgres` user (initdb refuses root), as scripts/services.sh
    does. `available()` says whether the binaries are installed (`make test` installs them unless
    DATABASE_URL points elsewhere)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hustle-test-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    @staticmethod
    def available() -> bool:
        return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        prefix: Sequence[str] = ("runuser", "-u", "postgres", "--") if self._as_postgres else ()
        subprocess.run(
            [*prefix, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def _options(self) -> str:
        return (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                      "postgres", "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", "60", "-o", self._options(), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def ensure_running(self) -> None:
        """Start it again if a test stopped it and did not get to restart it."""
        if not self.running():
            self.start()

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is cut, the cluster is back in ~0.5 s."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-m",
                  "fast", "-w", "-t", "60", "-o", self._options(), "restart")  # fmt: skip

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
