"""Metrics, logs and Sentry as an operator sees them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
import sentry_sdk
from google.protobuf import empty_pb2
from grpc import aio
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from hustle.v1 import system_pb2, system_pb2_grpc
from server import observability
from server.app import HustleServer, Resources
from server.config import Settings
from tests import probe


async def scrape(server: HustleServer) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{server.http_port}/metrics") as response,
    ):
        assert response.status == 200
        return await response.text()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.index("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_a_call_by_method_and_code(
    channel: aio.Channel, server: HustleServer
) -> None:
    labels = {"grpc_service": "hustle.v1.SystemService", "grpc_method": "GetServerInfo"}
    before = await scrape(server)
    await system_pb2_grpc.SystemServiceStub(channel).GetServerInfo(
        system_pb2.GetServerInfoRequest(), timeout=5
    )
    after = await scrape(server)
    name = "grpc_server_handled_total"
    assert (
        sample(after, name, grpc_code="OK", **labels)
        == sample(before, name, grpc_code="OK", **labels) + 1
    )
    count = "grpc_server_handling_seconds_count"
    assert sample(after, count, **labels) == sample(before, count, **labels) + 1
    assert sample(after, "db_query_duration_seconds_count", query="schema_version") >= 1


async def test_log_line_carries_the_clients_request_id(
    channel: aio.Channel, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    call = system_pb2_grpc.SystemServiceStub(channel).GetServerInfo(
        system_pb2.GetServerInfoRequest(),
        metadata=(("x-request-id", "client-req-7"),),
        timeout=5,
    )
    await call
    returned = dict(await call.initial_metadata())
    assert returned["x-request-id"] == "client-req-7"
    # the access line is written straight to stdout as JSON (server/observability.py)
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    access = [r for r in lines if r["msg"] == "rpc" and r.get("request_id") == "client-req-7"]
    assert len(access) == 1
    assert access[0]["method"] == "/hustle.v1.SystemService/GetServerInfo"
    assert access[0]["code"] == "OK"
    assert access[0]["level"] == "INFO"


async def test_request_id_is_made_when_missing_or_malformed(channel: aio.Channel) -> None:
    stub = system_pb2_grpc.SystemServiceStub(channel)
    for metadata in ((), (("x-request-id", "bad id with spaces"),)):
        call = stub.GetServerInfo(system_pb2.GetServerInfoRequest(), metadata=metadata, timeout=5)
        await call
        made = dict(await call.initial_metadata())["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)


class CapturingTransport(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


@pytest.fixture
async def sentry_events(
    settings: Settings, resources: Resources
) -> AsyncIterator[tuple[aio.Channel, CapturingTransport]]:
    transport = CapturingTransport()
    on = observability.configure_sentry(
        settings.model_copy(update={"sentry_dsn": "http://public@127.0.0.1:9/1"}),
        transport=transport,
    )
    assert on
    server = HustleServer(settings, resources, extra_handlers=[probe.handlers(resources.db)])
    await server.start()
    try:
        async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            yield channel, transport
    finally:
        await server.stop(grace=0)
        sentry_sdk.get_client().close()
        sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)  # no client


async def test_sentry_gets_one_event_with_user_and_request_id(
    sentry_events: tuple[aio.Channel, CapturingTransport],
) -> None:
    channel, transport = sentry_events
    with pytest.raises(aio.AioRpcError) as caught:
        await probe.call(channel, "Boom")(
            empty_pb2.Empty(), metadata=(("x-request-id", "req-s1"),), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    with pytest.raises(aio.AioRpcError):
        await probe.call(channel, "RaiseHx")(empty_pb2.Empty(), timeout=5)  # typed: not reported
    sentry_sdk.get_client().flush(timeout=5)
    events = [
        item.payload.json
        for env in transport.envelopes
        for item in env.items
        if item.type == "event"
    ]
    assert len(events) == 1
    event = events[0]
    assert event["user"]["id"] == "user-42"
    assert event["tags"]["request_id"] == "req-s1"
    assert event["exception"]["values"][0]["type"] == "RuntimeError"
