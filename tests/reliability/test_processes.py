"""`python -m server serve` with N processes: one port shared, a taken port refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import pytest

from hustle.v1 import system_pb2, system_pb2_grpc
from tests.helpers import free_port
from tests.processes import Process, wait_until_serving


def serve(database_url: str, redis_url: str, grpc_port: int, http_port: int, n: int) -> Process:
    return Process(
        ["serve"],
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(grpc_port),
            "HTTP_PORT": str(http_port),
            "SERVER_PROCESSES": str(n),
            "DB_POOL_MIN_SIZE": "1",
        },
    )


@pytest.fixture
def two_processes(database_url: str, redis_url: str) -> Iterator[tuple[Process, int, int]]:
    grpc_port, http_port = free_port(), free_port()
    process = serve(database_url, redis_url, grpc_port, http_port, 2)
    try:
        wait_until_serving(grpc_port, process)
        yield process, grpc_port, http_port
    finally:
        process.popen.terminate()
        process.wait(timeout=40)
        process.stop()


def test_processes_share_the_port(two_processes: tuple[Process, int, int]) -> None:
    process, grpc_port, _ = two_processes
    for i in range(20):  # one connection is pinned to one process; the kernel spreads new ones
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            system_pb2_grpc.SystemServiceStub(channel).GetServerInfo(
                system_pb2.GetServerInfoRequest(),
                metadata=(("x-request-id", f"spread-{i}"),),
                timeout=5,
            )
    deadline = time.monotonic() + 10
    while True:  # the log lines reach us through a pipe, a moment after the replies
        logged = [json.loads(line) for line in list(process.lines) if line.startswith("{")]
        spread = [e for e in logged if str(e.get("request_id", "")).startswith("spread-")]
        if len(spread) == 20 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    ready = {entry["pid"] for entry in logged if entry["msg"] == "server process ready"}
    served = {entry["pid"] for entry in spread}
    assert len(ready) == 2
    assert served == ready


def test_a_taken_port_is_refused(
    two_processes: tuple[Process, int, int], database_url: str, redis_url: str
) -> None:
    _, grpc_port, _ = two_processes
    second = serve(database_url, redis_url, grpc_port, free_port(), 2)
    assert second.wait(timeout=60) == 2
    assert f"GRPC_PORT {grpc_port} is already in use" in second.output
