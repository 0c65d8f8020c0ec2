"""hustle.v2.UserService: input checks (every invalid field at once) and translation; the rules
live in server.domain.users."""

from __future__ import annotations

from typing import Any

from grpc import aio

from hustle.v2 import user_pb2, user_pb2_grpc
from server import caller, validation
from server.api.v2 import convert
from server.db import Database
from server.domain import ratings, users
from server.domain.records import UserMode
from server.errors import invalid
from server.validation import Checks

Context = aio.ServicerContext[Any, Any]
# UpdateProfile's changeable fields (the contract's list).
CHANGEABLE = ("full_name", "default_mode", "location_state")


def _mode(value: int, field: str = "me.default_mode") -> UserMode:
    mode = convert.USER_MODES.to_domain(value)
    if mode is None:
        raise invalid(field, "must be USER_MODE_POSTER or USER_MODE_WORKER")
    return mode


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
        me = request.me
        with Checks() as check:
            set_fields = [name for name in CHANGEABLE if getattr(me, name)]
            paths = request.update_mask.paths
            named = check(validation.update_paths, paths, CHANGEABLE, set_fields)
            if check.failed("update_mask"):  # some paths are not changeable: check the others
                named = frozenset(p for p in paths if p in CHANGEABLE)
            name = (
                check(validation.full_name, me.full_name, "me.full_name")
                if "full_name" in named
                else None
            )
            mode = check(_mode, me.default_mode) if "default_mode" in named else None
            state = (
                check(validation.state_code, me.location_state, "me.location_state")
                if "location_state" in named
                else None
            )
        user = await users.update_profile(
            self._db,
            caller.current().user_id,
            full_name=name,
            default_mode=mode,
            location_state=state,
        )
        return user_pb2.UpdateProfileResponse(me=convert.me(user))

    async def SetAvatar(
        self, request: user_pb2.SetAvatarRequest, context: Context
    ) -> user_pb2.SetAvatarResponse:
        with Checks() as check:
            upload_id = check(validation.uuid_id, request.upload_id, "upload_id")
        user = await users.set_avatar(self._db, caller.current().user_id, upload_id)
        return user_pb2.SetAvatarResponse(me=convert.me(user))

    async def GetUser(
        self, request: user_pb2.GetUserRequest, context: Context
    ) -> user_pb2.GetUserResponse:
        with Checks() as check:
            user_id = check(validation.uuid_id, request.user_id, "user_id")
        user = await users.get(self._db, user_id)
        who = caller.current()
        as_worker = await ratings.summary_of(self._db, who, user.id, ratings.RatingRole.WORKER)
        as_poster = await ratings.summary_of(self._db, who, user.id, ratings.RatingRole.POSTER)
        return user_pb2.GetUserResponse(user=convert.public_user(user, as_worker, as_poster))
