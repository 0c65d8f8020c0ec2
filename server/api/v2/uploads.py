"""hustle.v2.UploadService: input checks (every invalid field at once) and translation; the rules
live in server.domain.uploads."""

from __future__ import annotations

import asyncio
from typing import Any

from grpc import aio

from hustle.v2 import upload_pb2, upload_pb2_grpc
from server import caller, validation
from server.api.v2 import convert
from server.db import Database
from server.domain import uploads
from server.storage import Storage
from server.validation import Checks

Context = aio.ServicerContext[Any, Any]


class UploadService(upload_pb2_grpc.UploadServiceServicer):
    def __init__(self, db: Database, storage: Storage) -> None:
        self._db = db
        self._storage = storage

    async def CreateUpload(
        self, request: upload_pb2.CreateUploadRequest, context: Context
    ) -> upload_pb2.CreateUploadResponse:
        content_type = request.content_type.strip().lower()
        with Checks() as check:
            purpose = convert.UPLOAD_PURPOSES.to_domain(request.purpose)
            if purpose is None:
                check.fail(
                    "purpose", "must be AVATAR, PROOF_PHOTO, VERIFICATION_DOC or MESSAGE_PHOTO"
                )
            else:
                check(uploads.check_type, self._storage, purpose, content_type)
                check(uploads.check_size, self._storage, purpose, request.size_bytes)
            task_id = None
            if request.task_id:
                task_id = check(validation.uuid_id, request.task_id, "task_id")
            check(validation.request_id, request.request_id)
        assert purpose is not None
        upload, post = await uploads.create(
            self._db,
            self._storage,
            caller.current().user_id,
            purpose,
            content_type,
            request.size_bytes,
            task_id,
        )
        return upload_pb2.CreateUploadResponse(
            upload=convert.upload(upload),
            post=upload_pb2.PresignedPost(
                url=post.url, fields=post.fields, expires_at=convert.timestamp(post.expires_at)
            ),
        )

    async def CompleteUpload(
        self, request: upload_pb2.CompleteUploadRequest, context: Context
    ) -> upload_pb2.CompleteUploadResponse:
        with Checks() as check:
            upload_id = check(validation.uuid_id, request.upload_id, "upload_id")
        upload = await uploads.complete(
            self._db, self._storage, caller.current().user_id, upload_id
        )
        return upload_pb2.CompleteUploadResponse(upload=convert.upload(upload))

    async def GetUpload(
        self, request: upload_pb2.GetUploadRequest, context: Context
    ) -> upload_pb2.GetUploadResponse:
        with Checks() as check:
            upload_id = check(validation.uuid_id, request.upload_id, "upload_id")
        upload = await uploads.get(self._db, caller.current(), upload_id)
        download, thumbnail = await asyncio.to_thread(uploads.links, self._storage, upload)
        return upload_pb2.GetUploadResponse(upload=convert.upload(upload, download, thumbnail))
