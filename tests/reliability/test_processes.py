"""`python -m server serve` with N processes: one port shared, a taken port refused."""

from __future__ import annotations

import json
import os
import signal
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


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc: each process's parent)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    # "pid (comm) state ppid ...": comm may hold spaces, so split after it
                    parents[int(entry)] = int(stat.read().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rpartition(")")[2].split()[0] != "Z":
                    living.add(pid)
        except OSError:
            continue
    return living


def test_killing_the_worker_command_stops_its_children(database_url: str, redis_url: str) -> None:
    """Issue 19, item 6: `python -m server worker` killed with SIGKILL left Dramatiq's processes
    running as orphans (still consuming jobs)."""
    process = Process(
        ["worker", "--processes", "1", "--threads", "2"],
        {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "SHUTDOWN_GRACE_SECONDS": "5",
         "WORKER_METRICS_PORT": "0", "DB_POOL_MIN_SIZE": "1"},
    )  # fmt: skip
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while "outbox relay listening" not in process.output:  # every child is up by then
            assert time.monotonic() < deadline, process.output
            assert process.popen.poll() is None, process.output
            time.sleep(0.1)
        children = descendants(process.popen.pid)
        assert len(children) >= 3, children  # Dramatiq's main, a worker process, the relay
        process.popen.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while alive(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive(children) == set(), process.output[-2000:]
    finally:
        process.stop()
        for pid in alive(children):  # orphans, when the test fails: ours to clean up
            os.kill(pid, signal.SIGKILL)
