"""Memory across the processes of `python -m server serve`: gauges per pid, and the command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.helpers import free_port
from tests.processes import ROOT, Process, wait_until_serving

TOKEN = "memory-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def two_processes(shared_database: str) -> Iterator[tuple[Process, int]]:
    """One server of two processes for the module (it only needs to be up, not a clean DB)."""
    from tests.conftest import TEST_REDIS_DB, _required, with_path

    database_url = shared_database
    redis_url = with_path(_required("REDIS_URL"), str(TEST_REDIS_DB))
    grpc_port, http_port = free_port(), free_port()
    process = Process(
        ["serve"],
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(grpc_port),
            "HTTP_PORT": str(http_port),
            "SERVER_PROCESSES": "2",
            "DB_POOL_MIN_SIZE": "1",
            "ADMIN_HTTP_TOKEN": TOKEN,
        },
    )
    try:
        wait_until_serving(grpc_port, process)
        yield process, http_port
    finally:
        process.popen.terminate()
        process.wait(timeout=40)
        process.stop()


def ready_pids(process: Process) -> set[int]:
    deadline = time.monotonic() + 10
    while True:
        logged = [json.loads(line) for line in list(process.lines) if line.startswith("{")]
        pids = {e["pid"] for e in logged if e["msg"] == "server process ready"}
        if len(pids) == 2 or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def test_every_process_reports_its_memory(two_processes: tuple[Process, int]) -> None:
    process, http_port = two_processes
    pids = ready_pids(process)
    assert len(pids) == 2
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for name in ("process_rss_bytes", "python_heap_allocated_blocks", "process_malloc_bytes"):
        series = re.findall(
            rf'^{name}\{{(?=[^}}]*role="server")[^}}]*pid="(\d+)"[^}}]*\}} (\S+)$',
            text,
            re.MULTILINE,
        ) or re.findall(
            rf'^{name}\{{[^}}]*pid="(\d+)"[^}}]*role="server"[^}}]*\}} (\S+)$', text, re.MULTILINE
        )
        assert {int(pid) for pid, _ in series} == pids, (name, text)
        assert all(float(value) > 0 for _, value in series)
    rss = [
        float(v)
        for _, v in re.findall(
            r'^process_rss_bytes\{[^}]*pid="(\d+)"[^}]*\} (\S+)$', text, re.MULTILINE
        )
    ]
    assert all(10 * 2**20 < value < 2**31 for value in rss)  # a live Python server: MiBs, not GiBs


def test_memory_command_reaches_every_process(two_processes: tuple[Process, int]) -> None:
    process, http_port = two_processes
    pids = ready_pids(process)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "memory",
            "--url",
            f"http://127.0.0.1:{http_port}",
            "--seconds",
            "0.5",
            "--top",
            "3",
        ],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "ADMIN_HTTP_TOKEN": TOKEN,
            "DATABASE_URL": "postgresql://unused@127.0.0.1/unused",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    reported = {
        int(pid) for pid in re.findall(r"^pid (\d+): Python heap", result.stdout, re.MULTILINE)
    }
    assert reported == pids, result.stdout
    assert f"tracing 2 process(es) {sorted(pids)}" in result.stderr
    # the command stopped tracing everywhere it started it
    seen: dict[int, bool] = {}
    for _ in range(80):
        request = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/debug/memory",
            headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            status = json.load(response)
        seen[status["pid"]] = status["tracing"]
        if set(seen) == pids:
            break
    assert seen == dict.fromkeys(pids, False)


def test_memory_command_says_what_is_wrong(two_processes: tuple[Process, int]) -> None:
    _, http_port = two_processes
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": "postgresql://unused@127.0.0.1/unused",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    base = [
        sys.executable,
        "-m",
        "server",
        "memory",
        "--url",
        f"http://127.0.0.1:{http_port}",
        "--seconds",
        "0",
    ]
    no_token = subprocess.run(base, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert no_token.returncode == 2
    assert "ADMIN_HTTP_TOKEN" in no_token.stderr
    wrong = subprocess.run(
        [*base, "--token", "x" * 40], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode == 1
    assert "HTTP 401" in wrong.stderr
