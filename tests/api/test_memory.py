"""The memory profiler on the HTTP port: admin-only, per process, and it finds a real leak."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from server.app import HustleServer, Resources
from server.config import Settings

TOKEN = "t" * 40


@pytest.fixture
async def admin_server(settings: Settings, resources: Resources) -> AsyncIterator[HustleServer]:
    from pydantic import SecretStr

    server = HustleServer(
        settings.model_copy(update={"admin_http_token": SecretStr(TOKEN)}), resources
    )
    await server.start()
    yield server
    await server.stop(grace=0)


async def call(
    server: HustleServer, path: str, body: Any = None, *, token: str | None = TOKEN
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = f"http://127.0.0.1:{server.http_port}{path}"
    async with aiohttp.ClientSession() as http:
        method = (
            http.get(url, headers=headers)
            if body is None
            else http.post(url, headers=headers, json=body)
        )
        async with method as response:
            return response.status, await response.json()


async def test_the_endpoints_do_not_exist_without_the_setting(server: HustleServer) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/debug/memory", "/debug/memory/start"):
            async with http.post(
                f"http://127.0.0.1:{server.http_port}{path}",
                headers={"Authorization": f"Bearer {TOKEN}"},
                json={"run": "r1"},
            ) as response:
                assert response.status in (404, 405)
        async with http.get(f"http://127.0.0.1:{server.http_port}/debug/memory") as response:
            assert response.status == 404


async def test_a_wrong_or_missing_token_is_refused(admin_server: HustleServer) -> None:
    for token in (None, "t" * 39, "t" * 41, TOKEN.upper()):
        status, body = await call(admin_server, "/debug/memory/start", {"run": "r1"}, token=token)
        assert status == 401
        assert "ADMIN_HTTP_TOKEN" in body["error"]
    status, body = await call(admin_server, "/debug/memory")
    assert status == 200
    assert body["tracing"] is False


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/debug/memory/start", {}, "run"),
        ("/debug/memory/start", {"run": "has spaces"}, "run"),
        ("/debug/memory/start", {"run": "r1", "frames": 0}, "frames"),
        ("/debug/memory/start", {"run": "r1", "frames": "3"}, "frames"),
        ("/debug/memory/snapshot", {"run": "r1", "group_by": "module"}, "group_by"),
        ("/debug/memory/snapshot", {"run": "r1", "top": 10_000}, "top"),
        ("/debug/memory/snapshot", {"run": "r1", "done": "1"}, "done"),
        ("/debug/memory/snapshot", [1, 2], "JSON object"),
    ],
)
async def test_bad_input_gets_a_400_naming_it(
    admin_server: HustleServer, path: str, body: Any, field: str
) -> None:
    status, reply = await call(admin_server, path, body)
    assert status == 400
    assert field in reply["error"]


async def test_snapshot_names_the_line_that_leaked(admin_server: HustleServer) -> None:
    status, started = await call(admin_server, "/debug/memory/start", {"run": "leak-1"})
    assert status == 200
    assert started["started"] is True
    assert started["tracing"] is True
    import os

    assert started["pid"] == os.getpid()
    assert os.getpid() in started["peers"]
    # the same run again is a no-op; another run is refused while this one traces
    assert (await call(admin_server, "/debug/memory/start", {"run": "leak-1"}))[1][
        "started"
    ] is False
    status, other = await call(admin_server, "/debug/memory/start", {"run": "someone-else"})
    assert status == 409
    assert "leak-1" in other["error"]
    try:
        leak = [bytearray(1024) for _ in range(4096)]  # LEAK: about 4 MiB that stays alive
        status, snap = await call(
            admin_server, "/debug/memory/snapshot", {"run": "leak-1", "top": 5}
        )
        assert status == 200
        top = snap["top"][0]
        assert top["where"] == f"tests/api/test_memory.py:{_leak_line()}"
        assert top["size_diff_bytes"] >= 4 * 2**20
        assert top["count_diff"] >= 4096
        assert snap["grown_total_bytes"] >= 4 * 2**20
        assert snap["traced_bytes"] >= 4 * 2**20
        # a process that already answered this step skips it
        status, skipped = await call(
            admin_server, "/debug/memory/snapshot", {"run": "leak-1", "done": [os.getpid()]}
        )
        assert skipped == {"pid": os.getpid(), "peers": skipped["peers"], "skipped": True}
        del leak
    finally:
        status, stopped = await call(admin_server, "/debug/memory/stop", {"run": "leak-1"})
    assert status == 200
    assert stopped["stopped"] is True
    assert stopped["tracing"] is False
    status, again = await call(admin_server, "/debug/memory/snapshot", {"run": "leak-1"})
    assert status == 409
    assert "not started" in again["error"]


def _leak_line() -> int:
    import inspect

    source, first = inspect.getsourcelines(test_snapshot_names_the_line_that_leaked)
    return first + next(i for i, line in enumerate(source) if "# LEAK" in line)
