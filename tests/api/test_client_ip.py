"""Whose IP a per-IP rate limit counts (issue 19, item 7).

Behind Fly's TLS-only handler no Fly-Client-IP arrived, so every caller had the proxy's address
(five sign-ins a minute for the whole platform); and with TRUST_PROXY_HEADERS the server believed
a `fly-client-ip` or the leftmost `x-forwarded-for` that any client can send, so a new value per
call got a fresh AUTH budget. Now only the header the configured proxy sets is believed.
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import AsyncIterator

import pytest
from grpc import aio

from hustle.v1 import auth_pb2, auth_pb2_grpc
from server.app import HustleServer, Resources
from server.config import Settings, SettingsError, load_settings
from tests.helpers import error_details
from tests.processes import ROOT

LIMIT = 5  # DOMAIN.md: sign-ins per minute per IP


async def serving(settings: Settings, resources: Resources) -> AsyncIterator[aio.Channel]:
    server = HustleServer(settings, resources)
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield channel
    await server.stop(grace=0)


@pytest.fixture
async def direct(settings: Settings, resources: Resources) -> AsyncIterator[aio.Channel]:
    """No proxy in front: the caller is the TCP peer, whatever headers it sends."""
    async for channel in serving(settings, resources):
        yield channel


@pytest.fixture
async def behind_fly(settings: Settings, resources: Resources) -> AsyncIterator[aio.Channel]:
    own = settings.model_copy(update={"client_ip_header": "fly-client-ip"})
    async for channel in serving(own, resources):
        yield channel


@pytest.fixture
async def behind_a_forwarding_proxy(
    settings: Settings, resources: Resources
) -> AsyncIterator[aio.Channel]:
    own = settings.model_copy(update={"client_ip_header": "x-forwarded-for"})
    async for channel in serving(own, resources):
        yield channel


async def sign_in(channel: aio.Channel, *metadata: tuple[str, str]) -> str:
    """The outcome of one sign-in with an unknown account: HX402, or HX501 once limited."""
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"  # a fresh account: only the IP counts
    try:
        await auth_pb2_grpc.AuthServiceStub(channel).SignIn(
            auth_pb2.SignInRequest(email=email, password="wrong password 1"),
            metadata=metadata,
            timeout=10,
        )
    except aio.AioRpcError as error:
        return str(error_details(error)["ErrorInfo"].reason)  # type: ignore[attr-defined]
    return "OK"


def spoofed(n: int) -> str:
    return f"203.0.113.{n + 1}"


async def test_spoofed_headers_do_not_change_the_callers_bucket(direct: aio.Channel) -> None:
    outcomes = [
        await sign_in(direct, ("fly-client-ip", spoofed(n)), ("x-forwarded-for", spoofed(n)))
        for n in range(LIMIT + 1)
    ]
    assert outcomes == ["HX402"] * LIMIT + ["HX501"]


async def test_behind_fly_the_header_it_sets_is_the_caller(behind_fly: aio.Channel) -> None:
    # Fly-Client-IP is set by the proxy: each real caller has a budget of its own ...
    outcomes = [await sign_in(behind_fly, ("fly-client-ip", spoofed(n))) for n in range(LIMIT + 1)]
    assert outcomes == ["HX402"] * (LIMIT + 1)
    # ... and what a caller adds itself (X-Forwarded-For) changes nothing
    same = [
        await sign_in(
            behind_fly, ("fly-client-ip", "198.51.100.9"), ("x-forwarded-for", spoofed(n))
        )
        for n in range(LIMIT + 1)
    ]
    assert same == ["HX402"] * LIMIT + ["HX501"]


async def test_x_forwarded_for_counts_what_the_trusted_proxy_appended(
    behind_a_forwarding_proxy: aio.Channel,
) -> None:
    # The client wrote the left part; the proxy appended the address it accepted the call from.
    outcomes = [
        await sign_in(behind_a_forwarding_proxy, ("x-forwarded-for", f"{spoofed(n)}, 198.51.100.7"))
        for n in range(LIMIT + 1)
    ]
    assert outcomes == ["HX402"] * LIMIT + ["HX501"]


def test_the_old_setting_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match=r"TRUST_PROXY_HEADERS.*CLIENT_IP_HEADER"):
        load_settings(
            database_url="postgresql://x@127.0.0.1/x",
            redis_url="redis://127.0.0.1/0",
            trust_proxy_headers=True,
        )


def test_fly_serves_grpc_through_its_http_handler_and_the_server_trusts_its_header() -> None:
    config = tomllib.loads((ROOT / "fly.toml").read_text())
    [grpc_service] = [s for s in config["services"] if s["internal_port"] == 50051]
    [port] = grpc_service["ports"]
    assert port["handlers"] == ["tls", "http"]  # the HTTP handler adds Fly-Client-IP
    assert port["http_options"]["h2_backend"] is True  # HTTP/2 to the app: gRPC, trailers
    assert port["tls_options"]["alpn"] == ["h2"]
    assert config["env"]["CLIENT_IP_HEADER"] == "fly-client-ip"
