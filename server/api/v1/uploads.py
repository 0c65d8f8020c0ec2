"""hustle.v1.UploadService: translation only; the rules live in server.domain.uploads."""

from __future__ import annotations

import asyncio
from typing import Any

from grpc import aio

from hustle.v1 import upload_pb2, upload_pb2_grpc
from server import caller, validation
from server.api.v1 import convert
from server.db import Database
from server.domain import uploads
from server.domain.records import UploadPurpose
from server.errors import invalid
from server.storage import Storage

Context = aio.ServicerContext[Any, Any]
# The purposes hustle.v1 knows (message photos are hustle.v2's: not found here).
SHOWN = frozenset(UploadPurpose) - convert.UPLOAD_PURPOSES.omit


class UploadService(upload_pb2_grpc.UploadServiceServicer):
    def __init__(self, db: Database, storage: Storage) -> None:
        self._db = db
        self._storage = storage

    async def CreateUpload(
        self, request: upload_pb2.CreateUploadRequest, context: Context
    ) -> upload_pb2.CreateUploadResponse:
        purpose = convert.UPLOAD_PURPOSES.to_domain(request.purpose)
        if purpose is None:
            raise invalid("purpose", "must be AVATAR, PROOF_PHOTO or VERIFICATION_DOC")
        upload, post = await uploads.create(
            self._db,
            self._storage,
            caller.current().user_id,
            purpose,
            request.content_type.strip().lower(),
            request.size_bytes,
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
        upload_id = validation.uuid_id(request.upload_id, "upload_id")
        upload = await uploads.complete(
            self._db, self._storage, caller.current().user_id, upload_id, shown=SHOWN
        )
        return upload_pb2.CompleteUploadResponse(upload=convert.upload(upload))

    async def GetUpload(
        self, request: upload_pb2.GetUploadRequest, context: Context
    ) -> upload_pb2.GetUploadResponse:
        upload = await uploads.get(
            self._db,
            caller.current(),
            validation.uuid_id(request.upload_id, "upload_id"),
            shown=SHOWN,
        )
        download, thumbnail = await asyncio.to_thread(uploads.links, self._storage, upload)
        return upload_pb2.GetUploadResponse(upload=convert.upload(upload, download, thumbnail))
