"""The plain HTTP port: `GET /health` (for load balancers and fly checks), `GET /metrics`, and,
when ADMIN_HTTP_TOKEN is set, the admin-only memory profiler under `/debug/memory`.

The port is shared by every server process (SO_REUSEPORT), so each TCP connection reaches one
process: every /debug/memory answer names its `pid` and the `peers` it can see, and
`python -m server memory` opens a new connection per request until it has reached them all.

    GET  /debug/memory            this process: tracing or not, traced and resident bytes
    POST /debug/memory/start      {"run": ID, "frames": 1}: start tracemalloc, keep a baseline
    POST /debug/memory/snapshot   {"run": ID, "top": 20, "group_by": "lineno", "since": "start"}
    POST /debug/memory/stop       {"run": ID}

Each needs `Authorization: Bearer <ADMIN_HTTP_TOKEN>` (compared in constant time); without the
setting the routes do not exist (404).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from server import memory, metrics
from server.health import HealthState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _admin_only(token: str, handler: Handler) -> Handler:
    expected = f"Bearer {token}".encode()

    async def guarded(request: web.Request) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            response = _error(401, "this endpoint needs Authorization: Bearer <ADMIN_HTTP_TOKEN>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="hustle-admin"'
            return response
        return await handler(request)

    return guarded


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "the body must be a JSON object"}', content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text='{"error": "the body must be a JSON object"}', content_type="application/json"
        )
    return body


class _BadField(Exception):
    pass


def _run_id(body: dict[str, Any]) -> str:
    run = body.get("run")
    if not isinstance(run, str) or not _RUN_ID.fullmatch(run):
        raise _BadField("run: required, 1-64 letters, digits, '.', '_' or '-'")
    return run


def _int(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _BadField(f"{name}: must be a whole number from {low} to {high}")
    return value


def _choice(body: dict[str, Any], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise _BadField(f"{name}: must be one of {', '.join(allowed)}")
    return str(value)


def _memory_routes(app: web.Application, token: str, profiler: memory.MemoryProfiler) -> None:
    async def call(request: web.Request, action: str) -> web.Response:
        body = await _body(request)
        try:
            run = _run_id(body)
            if action == "start":
                frames = _int(body, "frames", 1, 1, memory.MAX_FRAMES)
                result = await asyncio.to_thread(profiler.start, run, frames)
            elif action == "snapshot":
                done = body.get("done", [])
                if not isinstance(done, list) or not all(type(pid) is int for pid in done):
                    raise _BadField("done: must be a list of process ids")
                if os.getpid() in done:  # the client has this process's answer already
                    return web.json_response(
                        {"pid": os.getpid(), "peers": memory.live_pids(), "skipped": True}
                    )
                top = _int(body, "top", 20, 1, memory.MAX_TOP)
                group_by: Any = _choice(body, "group_by", "lineno", memory.GROUP_BY)
                since: Any = _choice(body, "since", "start", ("start", "last"))
                result = await asyncio.to_thread(
                    profiler.snapshot, run, top=top, group_by=group_by, since=since
                )
            else:
                result = await asyncio.to_thread(profiler.stop, run)
        except _BadField as exc:
            return _error(400, str(exc))
        except memory.ProfilerError as exc:
            return _error(exc.status, str(exc))
        return web.json_response(result)

    async def status(_: web.Request) -> web.Response:
        return web.json_response(profiler.status())

    async def start(request: web.Request) -> web.Response:
        return await call(request, "start")

    async def snapshot(request: web.Request) -> web.Response:
        return await call(request, "snapshot")

    async def stop(request: web.Request) -> web.Response:
        return await call(request, "stop")

    app.router.add_get("/debug/memory", _admin_only(token, status))
    app.router.add_post("/debug/memory/start", _admin_only(token, start))
    app.router.add_post("/debug/memory/snapshot", _admin_only(token, snapshot))
    app.router.add_post("/debug/memory/stop", _admin_only(token, stop))


def build_app(
    state: HealthState,
    *,
    admin_token: str | None = None,
    profiler: memory.MemoryProfiler = memory.PROFILER,
) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        if state.draining:
            return web.json_response({"status": "draining"}, status=503)
        if not state.checked:
            return web.json_response({"status": "starting"}, status=503)
        if not state.serving:
            body = {"status": "failing", "failing": state.failing}
            return web.json_response(body, status=503)
        if state.failing:  # served without a non-critical dependency (Redis)
            return web.json_response({"status": "degraded", "degraded": state.degraded})
        return web.json_response({"status": "ok"})

    async def prometheus(_: web.Request) -> web.Response:
        body, content_type = metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", prometheus)
    if admin_token:
        _memory_routes(app, admin_token, profiler)
    return app


async def start(
    state: HealthState,
    host: str,
    port: int,
    *,
    reuse_port: bool,
    admin_token: str | None = None,
) -> web.AppRunner:
    # This process's memory gauges, which every process's /metrics serves (multiprocess mode).
    memory.start_sampler("server")
    runner = web.AppRunner(
        build_app(state, admin_token=admin_token), access_log=None, handle_signals=False
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the HTTP server is not listening")
