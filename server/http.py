"""The plain HTTP port: `GET /health` (for load balancers and fly checks) and `GET /metrics`."""

from __future__ import annotations

from aiohttp import web

from server import metrics
from server.health import HealthState


def build_app(state: HealthState) -> web.Application:
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
    return app


async def start(state: HealthState, host: str, port: int, *, reuse_port: bool) -> web.AppRunner:
    runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the HTTP server is not listening")
