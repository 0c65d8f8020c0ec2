"""Wiring of one server process: resources, interceptors, servicers, health, reflection, drain.

`Resources` (pool, Redis) are built once per process and passed to whatever needs them.
`HustleServer` is the gRPC server plus its HTTP port; tests build it directly (with their own
resources, and sometimes extra handlers) and `serve` runs it until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import redis.asyncio as aioredis
import sentry_sdk
from aiohttp import web
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from loguru import logger

from hustle.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    dispute_pb2,
    dispute_pb2_grpc,
    feed_pb2,
    system_pb2,
    system_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    upload_pb2,
    upload_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
    verification_pb2,
    verification_pb2_grpc,
)
from server import http, logs, memory, observability, reflection, versions
from server.api.v1 import feed as feed_api
from server.api.v1.auth import AuthService
from server.api.v1.disputes import DisputeService
from server.api.v1.feed import FeedService
from server.api.v1.system import SystemService
from server.api.v1.tasks import TaskService
from server.api.v1.uploads import UploadService
from server.api.v1.users import UserService
from server.api.v1.verifications import VerificationService
from server.api.v2 import feed as feed_v2
from server.api.v2 import registry as v2
from server.cache import FeedCache
from server.config import Settings
from server.db import Database
from server.health import HealthMonitor
from server.interceptors.admission import AdmissionInterceptor
from server.interceptors.decoding import DecodingInterceptor
from server.interceptors.deprecation import DeprecationInterceptor
from server.interceptors.drain import DrainGate, DrainInterceptor
from server.interceptors.errors import ErrorMappingInterceptor
from server.interceptors.idempotency import IdempotencyInterceptor, response_types
from server.interceptors.metrics import MetricsInterceptor
from server.interceptors.request_context import RequestContextInterceptor
from server.interceptors.sentry import SentryInterceptor
from server.policy import policies
from server.ratelimit import RateLimiter, limits_from
from server.sessions import SessionStore
from server.storage import Storage
from server.watch import WatchHub

# Every API package this process serves, oldest first (GetServerInfo lists them).
API_VERSIONS = ("hustle.v1", "hustle.v2")
# after SIGTERM, grpc stops once no call has arrived for this long (clients wait out their delay)
QUIET_SECONDS = 0.3
V1_SERVICE_DESCRIPTORS = (
    system_pb2.DESCRIPTOR.services_by_name["SystemService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
    user_pb2.DESCRIPTOR.services_by_name["UserService"],
    task_pb2.DESCRIPTOR.services_by_name["TaskService"],
    feed_pb2.DESCRIPTOR.services_by_name["FeedService"],
    dispute_pb2.DESCRIPTOR.services_by_name["DisputeService"],
    upload_pb2.DESCRIPTOR.services_by_name["UploadService"],
    verification_pb2.DESCRIPTOR.services_by_name["VerificationService"],
)
# Both versions' services: their policies, health, reflection and response types.
SERVICE_DESCRIPTORS = (*V1_SERVICE_DESCRIPTORS, *v2.SERVICE_DESCRIPTORS)
SERVICES = tuple(service.full_name for service in SERVICE_DESCRIPTORS)


@dataclass
class Resources:
    db: Database
    redis: aioredis.Redis
    storage: Storage

    @classmethod
    async def open(cls, settings: Settings, *, name: str = "hustle-server") -> Resources:
        db = Database.from_settings(settings, name=name)
        await db.open()
        client = aioredis.Redis.from_url(
            str(settings.redis_url),
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
        )
        storage = Storage(settings)
        await asyncio.to_thread(storage.ensure_bucket)
        return cls(db=db, redis=client, storage=storage)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.db.close()


class HustleServer:
    def __init__(
        self,
        settings: Settings,
        resources: Resources,
        *,
        reuse_port: bool = False,
        extra_handlers: Sequence[grpc.GenericRpcHandler] = (),
    ) -> None:
        self.settings = settings
        self.resources = resources
        self.started_at = datetime.now(UTC)
        self.health = HealthMonitor(
            {"database": self._check_database, "redis": self._check_redis},
            SERVICES,
            interval=settings.health_check_interval_seconds,
        )
        self._reuse_port = reuse_port
        self._extra_handlers = extra_handlers
        self.sessions = SessionStore(resources.db, resources.redis)
        self.feed_cache = FeedCache(resources.redis)
        self.rate_limiter = RateLimiter(resources.redis, limits_from(settings))
        self.policies = policies(SERVICE_DESCRIPTORS)
        self.gate = DrainGate()
        self.watch_hub = WatchHub(settings)
        self.feed_service = FeedService(resources.db, self.feed_cache, settings)
        self.v2_servicers = v2.servicers(
            v2.Dependencies(
                db=resources.db,
                cache=self.feed_cache,
                sessions=self.sessions,
                storage=resources.storage,
                settings=settings,
                version=logs.version(),
                api_versions=API_VERSIONS,
                notices=versions.notices_from(settings),
                started_at=self.started_at,
                hub=self.watch_hub,
            )
        )
        self.feed_service_v2 = next(
            s for _, s in self.v2_servicers if isinstance(s, feed_v2.FeedService)
        )
        self._grpc: aio.Server | None = None
        self._http: web.AppRunner | None = None
        self._health_task: asyncio.Task[None] | None = None
        self.grpc_port = 0
        self.http_port = 0

    async def _check_database(self) -> None:
        await self.resources.db.scalar("ping", int)

    async def _check_redis(self) -> None:
        await self.resources.redis.ping()

    def _interceptors(self) -> list[aio.ServerInterceptor]:
        chain: list[aio.ServerInterceptor] = [
            *DeprecationInterceptor.configured(self.settings),  # adds to the headers sent next
            RequestContextInterceptor(),
            MetricsInterceptor(),
            ErrorMappingInterceptor(),
            DrainInterceptor(self.gate),
            DecodingInterceptor(),
        ]
        if sentry_sdk.get_client().is_active():
            chain.append(SentryInterceptor())
        chain.append(
            AdmissionInterceptor(
                self.policies,
                self.sessions,
                self.rate_limiter,
                client_ip_header=self.settings.client_ip_header,
                trusted_proxy_hops=self.settings.trusted_proxy_hops,
                # a cached feed page: looked up in admission's own round trip
                prefetch={
                    "/hustle.v1.FeedService/GetFeed": self.feed_service.cache_slot,
                    "/hustle.v2.FeedService/GetFeed": self.feed_service_v2.cache_slot,
                },
            )
        )
        chain.append(
            IdempotencyInterceptor(
                self.resources.db, self.policies, response_types(SERVICE_DESCRIPTORS)
            )
        )
        return chain

    async def start(self) -> None:
        settings = self.settings
        server = aio.server(
            interceptors=self._interceptors(),
            options=[("grpc.so_reuseport", 1 if self._reuse_port else 0)],
        )
        system_pb2_grpc.add_SystemServiceServicer_to_server(
            SystemService(
                self.resources.db,
                version=logs.version(),
                api_versions=API_VERSIONS,
                build_commit=settings.build_commit,
                started_at=self.started_at,
            ),
            server,
        )
        db = self.resources.db
        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthService(db, self.sessions, settings), server
        )
        user_pb2_grpc.add_UserServiceServicer_to_server(UserService(db), server)
        task_pb2_grpc.add_TaskServiceServicer_to_server(
            TaskService(db, self.feed_cache, settings), server
        )
        feed_api.add_to_server(self.feed_service, server)
        dispute_pb2_grpc.add_DisputeServiceServicer_to_server(DisputeService(db, settings), server)
        upload_pb2_grpc.add_UploadServiceServicer_to_server(
            UploadService(db, self.resources.storage), server
        )
        verification_pb2_grpc.add_VerificationServiceServicer_to_server(
            VerificationService(db, settings), server
        )
        v2.add_to_server(server, self.v2_servicers)
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, server)
        if self._extra_handlers:
            server.add_generic_rpc_handlers(tuple(self._extra_handlers))
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        reflection.enable(server, (*SERVICES, health_name))
        self.grpc_port = server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")

        await self.health.check_once()
        self._health_task = asyncio.create_task(self.health.run(), name="health-monitor")
        admin_token = settings.admin_http_token
        self._http = await http.start(
            self.health.state,
            settings.grpc_host,
            settings.http_port,
            reuse_port=self._reuse_port,
            admin_token=admin_token.get_secret_value() if admin_token else None,
        )
        self.http_port = http.bound_port(self._http)
        await self.watch_hub.start()
        await server.start()
        self._grpc = server

    async def stop(self, grace: float) -> None:
        """Drain, then stop: in-flight calls finish, none is cancelled.

        1. The gate closes: each call that reaches the server from now on is answered at once
           with UNAVAILABLE and a retry delay (clients retry, elsewhere), which also empties
           grpc's backlog of calls received but not yet picked up; health says NOT_SERVING
           (/health 503) so that load balancers stop sending. Watch streams, which would
           otherwise run for ever, end at once with UNAVAILABLE and a retry delay (their
           clients resume from their cursor on another process).
        2. Calls already inside handlers run until they end, within `grace` seconds.
        3. When none is in flight and none has arrived for QUIET_SECONDS, grpc stops (the
           backlog is empty, so it cancels nothing); calls still running at the end of `grace`
           are cancelled.
        """
        deadline = time.monotonic() + grace
        self.gate.close()
        self.watch_hub.end_streams()  # watch streams end now (UNAVAILABLE, retry elsewhere)
        await self.health.drain()
        if self._grpc is not None:
            await self.gate.settle(deadline, QUIET_SECONDS)
            await self._grpc.stop(max(0.0, deadline - time.monotonic()))
        await self.watch_hub.stop()
        if self._health_task is not None:
            self._health_task.cancel()
            await asyncio.gather(self._health_task, return_exceptions=True)
        if self._http is not None:
            await self._http.cleanup()


async def serve(
    settings: Settings, *, reuse_port: bool, on_ready: Callable[[int, int], None] | None = None
) -> None:
    """Run one server process until SIGTERM or SIGINT, then drain and return."""
    memory.keep_large_allocations_out_of_the_heap()  # before the first password is hashed
    logs.configure_logging(settings)
    observability.configure_sentry(settings)  # before the gRPC server exists
    resources = await Resources.open(settings)
    server = HustleServer(settings, resources, reuse_port=reuse_port)
    try:
        await server.start()
    except BaseException:
        await resources.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logger.bind(grpc_port=server.grpc_port, http_port=server.http_port).info("server process ready")
    if on_ready is not None:
        on_ready(server.grpc_port, server.http_port)
    await stop.wait()
    logger.info(f"draining: in-flight calls get up to {settings.shutdown_grace_seconds:g} s")
    await server.stop(settings.shutdown_grace_seconds)
    await resources.close()
    logger.info("server process stopped")
    await logger.complete()
