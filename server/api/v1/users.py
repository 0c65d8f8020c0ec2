"""hustle.v1.UserService: translation only; the rules live in server.domain.users."""

from __future__ import annotations

from typing import Any

from grpc import aio

from hustle.v1 import user_pb2, user_pb2_grpc
from server import caller, validation
from server.api.v1 import convert
from server.db import Database
from server.domain import users
from server.errors import invalid

Context = aio.ServicerContext[Any, Any]


class UserService(user_pb2_grpc.UserServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def GetMe(
        self, request: user_pb2.GetMeRequest, context: Context
    ) -> user_pb2.GetMeResponse:
        return user_pb2.GetMeResponse(
            me=convert.me(await users.get(self._db, caller.current().user_id))
        )

    async def UpdateProfile(
        self, request: user_pb2.UpdateProfileRequest, context: Context
    ) -> user_pb2.UpdateProfileResponse:
        mode = None
        if request.HasField("default_mode"):
            mode = convert.USER_MODES.to_domain(request.default_mode)
            if mode is None:
                raise invalid("default_mode", "must be USER_MODE_POSTER or USER_MODE_WORKER")
        user = await users.update_profile(
            self._db,
            caller.current().user_id,
            full_name=validation.full_name(request.full_name)
            if request.HasField("full_name")
            else None,
            default_mode=mode,
            location_state=validation.state_code(request.location_state)
            if request.HasField("location_state")
            else None,
        )
        return user_pb2.UpdateProfileResponse(me=convert.me(user))

    async def SetAvatar(
        self, request: user_pb2.SetAvatarRequest, context: Context
    ) -> user_pb2.SetAvatarResponse:
        upload_id = validation.uuid_id(request.upload_id, "upload_id")
        user = await users.set_avatar(self._db, caller.current().user_id, upload_id)
        return user_pb2.SetAvatarResponse(me=convert.me(user))

    async def GetUser(
        self, request: user_pb2.GetUserRequest, context: Context
    ) -> user_pb2.GetUserResponse:
        user = await users.get(self._db, validation.uuid_id(request.user_id, "user_id"))
        return user_pb2.GetUserResponse(user=convert.public_user(user))
