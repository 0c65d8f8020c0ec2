"""hustle.v2's services, all registered here: one servicer module per service, one list.

A new v2 service (later issues add notifications, messaging, ratings, admin, watch streams) is
a module of its own beside these, its descriptor in `SERVICE_DESCRIPTORS` and its servicer in
`servicers()`; server/app.py then registers it, its policy (server/policy.py reads the v2
options), health and reflection with the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from grpc import aio

from hustle.v2 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    dispute_pb2,
    dispute_pb2_grpc,
    feed_pb2,
    message_pb2,
    message_pb2_grpc,
    notification_pb2,
    notification_pb2_grpc,
    rating_pb2,
    rating_pb2_grpc,
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
from server.api.v2 import feed
from server.api.v2.admin import AdminService
from server.api.v2.auth import AuthService
from server.api.v2.disputes import DisputeService
from server.api.v2.messages import MessageService
from server.api.v2.notifications import NotificationService
from server.api.v2.ratings import RatingService
from server.api.v2.system import SystemService
from server.api.v2.tasks import TaskService
from server.api.v2.uploads import UploadService
from server.api.v2.users import UserService
from server.api.v2.verifications import VerificationService
from server.cache import FeedCache
from server.config import Settings
from server.db import Database
from server.sessions import SessionStore
from server.storage import Storage
from server.versions import Notice
from server.watch import WatchHub

SERVICE_DESCRIPTORS = (
    system_pb2.DESCRIPTOR.services_by_name["SystemService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
    user_pb2.DESCRIPTOR.services_by_name["UserService"],
    task_pb2.DESCRIPTOR.services_by_name["TaskService"],
    feed_pb2.DESCRIPTOR.services_by_name["FeedService"],
    dispute_pb2.DESCRIPTOR.services_by_name["DisputeService"],
    upload_pb2.DESCRIPTOR.services_by_name["UploadService"],
    verification_pb2.DESCRIPTOR.services_by_name["VerificationService"],
    notification_pb2.DESCRIPTOR.services_by_name["NotificationService"],
    message_pb2.DESCRIPTOR.services_by_name["MessageService"],
    rating_pb2.DESCRIPTOR.services_by_name["RatingService"],
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
)


@dataclass(frozen=True, slots=True)
class Dependencies:
    """What the v2 servicers are built from (server/app.py makes them once per process)."""

    db: Database
    cache: FeedCache
    sessions: SessionStore
    storage: Storage
    settings: Settings
    version: str
    api_versions: Sequence[str]
    notices: Mapping[str, Notice]
    started_at: datetime
    hub: WatchHub  # the process's watch hub (server/watch.py), for the watch streams


Register = Callable[[Any, aio.Server], None]


def servicers(deps: Dependencies) -> list[tuple[Register, Any]]:
    """Each v2 servicer with the function that adds it to a server, in SERVICE_DESCRIPTORS'
    order."""
    db, settings = deps.db, deps.settings
    return [
        (
            system_pb2_grpc.add_SystemServiceServicer_to_server,
            SystemService(
                db,
                version=deps.version,
                api_versions=deps.api_versions,
                notices=deps.notices,
                build_commit=settings.build_commit,
                started_at=deps.started_at,
            ),
        ),
        (auth_pb2_grpc.add_AuthServiceServicer_to_server, AuthService(db, deps.sessions, settings)),
        (user_pb2_grpc.add_UserServiceServicer_to_server, UserService(db)),
        (
            task_pb2_grpc.add_TaskServiceServicer_to_server,
            TaskService(db, deps.cache, settings, deps.hub),
        ),
        (feed.add_to_server, feed.FeedService(db, deps.cache, settings, deps.hub)),
        (dispute_pb2_grpc.add_DisputeServiceServicer_to_server, DisputeService(db, settings)),
        (upload_pb2_grpc.add_UploadServiceServicer_to_server, UploadService(db, deps.storage)),
        (
            verification_pb2_grpc.add_VerificationServiceServicer_to_server,
            VerificationService(db, settings),
        ),
        (
            notification_pb2_grpc.add_NotificationServiceServicer_to_server,
            NotificationService(db, settings, deps.hub),
        ),
        (
            message_pb2_grpc.add_MessageServiceServicer_to_server,
            MessageService(db, deps.storage, settings),
        ),
        (rating_pb2_grpc.add_RatingServiceServicer_to_server, RatingService(db)),
        (
            admin_pb2_grpc.add_AdminServiceServicer_to_server,
            AdminService(db, deps.cache, deps.sessions, settings),
        ),
    ]


def add_to_server(server: aio.Server, made: Sequence[tuple[Register, Any]]) -> None:
    """Register the v2 servicers `servicers()` made."""
    for register, servicer in made:
        register(servicer, server)
