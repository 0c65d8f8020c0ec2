"""The server's /metrics as Prometheus reads it: linted by promtool, every exported family there."""

from __future__ import annotations

import subprocess

from grpc import aio

from hustle.v1 import system_pb2, system_pb2_grpc
from server.app import HustleServer
from tests.api.test_observability import scrape
from tests.unit.test_ops import ROOT


async def test_metrics_pass_promtools_lint(channel: aio.Channel, server: HustleServer) -> None:
    await system_pb2_grpc.SystemServiceStub(channel).GetServerInfo(
        system_pb2.GetServerInfoRequest(), timeout=5
    )
    text = await scrape(server)
    promtool = subprocess.run(
        [str(ROOT / "scripts" / "promtool.sh"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr
    for family in ("grpc_server_handled_total", "process_rss_bytes", "db_pool_connections_max"):
        assert f"\n{family}{{" in text or f"\n{family} " in text, family
