"""Sentry as configured for production, with a real sentry_sdk client and a capturing transport:
release and environment from the build, sampled performance traces, nothing secret sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import sentry_sdk
from google.protobuf import empty_pb2
from grpc import aio

from hustle.v1 import system_pb2, system_pb2_grpc
from server import logs, observability
from server.app import HustleServer, Resources
from server.config import Settings
from tests import probe
from tests.api.test_observability import CapturingTransport

SECRETS = ("hunter2-pass", "tok" + "x" * 40, "5551234567", "482913", "jane.doe", "dbpass123")


def items(transport: CapturingTransport, kind: str) -> list[dict[str, Any]]:
    sentry_sdk.get_client().flush(timeout=5)
    return [
        item.payload.json
        for envelope in transport.envelopes
        for item in envelope.items
        if item.type == kind and item.payload.json is not None
    ]


@pytest.fixture
def sentry_on(settings: Settings) -> Iterator[tuple[Settings, CapturingTransport]]:
    """Sentry configured by our own configure_sentry (scrubbers included), sending nowhere."""
    transport = CapturingTransport()
    configured = settings.model_copy(
        update={
            "sentry_dsn": "http://public@127.0.0.1:9/1",
            "build_commit": "abc1234",
            "sentry_traces_sample_rate": 1.0,
        }
    )
    assert observability.configure_sentry(configured, transport=transport)
    try:
        yield configured, transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)  # no client


@pytest.fixture
async def traced_channel(
    sentry_on: tuple[Settings, CapturingTransport], resources: Resources
) -> AsyncIterator[aio.Channel]:
    settings, _ = sentry_on
    server = HustleServer(settings, resources, extra_handlers=[probe.handlers(resources.db)])
    await server.start()
    try:
        async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            yield channel
    finally:
        await server.stop(grace=0)


async def test_an_event_carries_release_and_environment_and_no_secret(
    sentry_on: tuple[Settings, CapturingTransport], traced_channel: aio.Channel
) -> None:
    _, transport = sentry_on
    with pytest.raises(aio.AioRpcError) as caught:
        await probe.call(traced_channel, "LeakSecrets")(empty_pb2.Empty(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    events = items(transport, "event")
    assert len(events) == 1
    event = events[0]
    assert event["release"] == f"hustle@{logs.version()}+abc1234"
    assert event["environment"] == "test"
    assert event["user"] == {"id": "user-7"}
    text = json.dumps(event)
    for secret in SECRETS:
        assert secret not in text, secret
    # what was there is still readable, minus the secrets
    message = event["exception"]["values"][0]["value"]
    assert "could not text [phone] code [Filtered] for j***@example.com" in message
    assert "Bearer [Filtered]" in message
    assert "postgresql://hustle:[Filtered]@db/x" in message
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert frame["function"] == "leak_secrets"
    assert frame["vars"]["password"] == "[Filtered]"
    assert frame["vars"]["access_token"] == "[Filtered]"
    assert frame["vars"]["phone_number"] == "[Filtered]"
    crumbs = [c for c in event["breadcrumbs"]["values"] if c.get("category") == "sms"]
    assert crumbs == [
        {
            **crumbs[0],
            "message": "texting [phone] the code [Filtered]",
            "data": {"code": "[Filtered]", "to": "[phone]", "password": "[Filtered]"},
        }
    ]


async def test_calls_are_traced_continuing_the_callers_trace(
    sentry_on: tuple[Settings, CapturingTransport], traced_channel: aio.Channel
) -> None:
    _, transport = sentry_on
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    await system_pb2_grpc.SystemServiceStub(traced_channel).GetServerInfo(
        system_pb2.GetServerInfoRequest(),
        metadata=(("sentry-trace", f"{trace_id}-00f067aa0ba902b7-1"),),
        timeout=5,
    )
    with pytest.raises(aio.AioRpcError):
        await probe.call(traced_channel, "RaiseHx")(empty_pb2.Empty(), timeout=5)
    transactions = {t["transaction"]: t for t in items(transport, "transaction")}
    info = transactions["/hustle.v1.SystemService/GetServerInfo"]
    assert info["contexts"]["trace"]["op"] == "grpc.server"
    assert info["contexts"]["trace"]["status"] == "ok"
    assert info["contexts"]["trace"]["trace_id"] == trace_id
    assert info["release"] == f"hustle@{logs.version()}+abc1234"
    assert info["transaction_info"] == {"source": "route"}
    failed = transactions[f"/{probe.SERVICE}/RaiseHx"]
    assert failed["contexts"]["trace"]["status"] == "not_found"  # HX302, typed: no event
    assert items(transport, "event") == []


async def test_no_trace_is_sent_when_the_sample_rate_is_zero(
    settings: Settings, resources: Resources
) -> None:
    transport = CapturingTransport()
    untraced = settings.model_copy(update={"sentry_dsn": "http://public@127.0.0.1:9/1"})
    assert untraced.sentry_traces_sample_rate == 0.0
    assert observability.configure_sentry(untraced, transport=transport)
    server = HustleServer(untraced, resources)
    await server.start()
    try:
        async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            for _ in range(5):
                await system_pb2_grpc.SystemServiceStub(channel).GetServerInfo(
                    system_pb2.GetServerInfoRequest(), timeout=5
                )
        assert items(transport, "transaction") == []
    finally:
        await server.stop(grace=0)
        sentry_sdk.get_client().close()
        sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)


def test_scrubbing_keeps_the_envelope_and_drops_secrets_by_key_and_by_shape() -> None:
    event = {
        "event_id": "0" * 32,
        "release": "hustle@0.1.0+abc1234",
        "environment": "prod",
        "message": "sign-in for jane.doe@example.com with password: 'pw-123'",
        "extra": {
            "session": {"id": "s1"},
            "phone_verified": True,
            "status_code": 500,
            "payload": "{'code': '123456', 'page_token': 'abc'}",
            "query": "token=zzz&x=1",
        },
        "request": {"headers": {"Authorization": "Bearer abc.def", "X-Request-Id": "r1"}},
        "tags": {"rpc.method": "/hustle.v1.AuthService/SignIn", "grpc_code": "INTERNAL"},
    }
    scrubbed = observability.scrub_event(event)
    assert scrubbed["event_id"] == "0" * 32
    assert scrubbed["release"] == "hustle@0.1.0+abc1234"  # kept although it looks like an email
    assert scrubbed["message"] == "sign-in for j***@example.com with password: '[Filtered]'"
    assert scrubbed["extra"]["session"] == "[Filtered]"
    assert scrubbed["extra"]["phone_verified"] is True  # a flag is not a phone number
    assert scrubbed["extra"]["status_code"] == 500
    assert scrubbed["extra"]["payload"] == "{'code': '[Filtered]', 'page_token': '[Filtered]'}"
    assert scrubbed["extra"]["query"] == "token=[Filtered]&x=1"
    assert scrubbed["request"]["headers"] == {"Authorization": "[Filtered]", "X-Request-Id": "r1"}
    assert scrubbed["tags"] == event["tags"]
    assert event["extra"]["session"] == {"id": "s1"}  # the original is left alone


def test_job_runs_are_traced_and_their_failures_scrubbed(
    sentry_on: tuple[Settings, CapturingTransport],
) -> None:
    """The worker's middleware, driven through Dramatiq's own hooks (in a context of its own,
    as a worker thread would be)."""
    import contextvars

    import dramatiq
    from dramatiq.broker import MessageProxy
    from dramatiq.brokers.stub import StubBroker

    from jobs.observability import JobObservability

    _, transport = sentry_on
    middleware, broker = JobObservability(), StubBroker()

    def run(actor: str, exception: BaseException | None) -> None:
        message = MessageProxy(
            dramatiq.Message(
                queue_name="messages", actor_name=actor, args=(), kwargs={}, options={}
            )
        )
        middleware.before_process_message(broker, message)
        middleware.after_process_message(broker, message, exception=exception)

    contextvars.copy_context().run(run, "email.send", None)
    contextvars.copy_context().run(run, "sms.send", RuntimeError("Twilio refused +15551234567"))
    transactions = {
        t["transaction"]: t["contexts"]["trace"] for t in items(transport, "transaction")
    }
    assert transactions["email.send"]["op"] == "queue.process"
    assert transactions["email.send"]["status"] == "ok"
    assert transactions["sms.send"]["status"] == "internal_error"
    (event,) = items(transport, "event")
    assert event["exception"]["values"][0]["value"] == "Twilio refused [phone]"
    assert event["tags"]["job"] == "sms.send"
