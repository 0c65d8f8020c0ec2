"""The clients' tests run `python -m server serve` as a real child process on ports of its own,
as an app would find it, and may stop it and start it again on the same port."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from tests.helpers import free_port
from tests.processes import Process, wait_until_serving


@dataclass
class Server:
    """`python -m server serve` (one process) on a fixed gRPC port, restartable."""

    env: Mapping[str, str]
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    runs: list[Process] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def process(self) -> Process:
        return self.runs[-1]

    def start(self) -> Process:
        process = Process(
            ["serve"],
            {
                **self.env,
                "GRPC_HOST": "127.0.0.1",
                "GRPC_PORT": str(self.grpc_port),
                "HTTP_PORT": str(self.http_port),
                "SERVER_PROCESSES": "1",
                "DB_POOL_MIN_SIZE": "1",
            },
        )
        self.runs.append(process)
        return process

    async def start_serving(self) -> Process:
        process = self.start()
        await asyncio.to_thread(wait_until_serving, self.grpc_port, process)
        return process

    def stop(self) -> int:
        """SIGTERM, as a deploy stops it; its exit code once it has drained and exited."""
        self.process.popen.terminate()
        try:
            return self.process.wait(timeout=40)
        finally:
            self.process.stop()

    def output(self) -> str:
        return "\n\n".join(f"--- server run {i + 1}:\n{p.output}" for i, p in enumerate(self.runs))


def server_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "REDIS_URL": redis_url, **extra}


@pytest.fixture
def server_process(database_url: str, redis_url: str) -> Iterator[Server]:
    """A server process of this test's own (not yet started)."""
    server = Server(server_env(database_url, redis_url))
    yield server
    for process in server.runs:
        if process.popen.poll() is None:
            process.popen.terminate()
            try:
                process.wait(timeout=40)
            finally:
                process.stop()
