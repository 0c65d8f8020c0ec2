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
from server.errors import invalid
from server.storage import Storage

Context = aio.ServicerContext[Any, Any]
PURPOSES = {
    upload_pb2.UPLOAD_PURPOSE_AVATAR: "AVATAR",
    upload_pb2.UPLOAD_PURPOSE_PROOF_PHOTO: "PROOF_PHOTO",
    upload_pb2.UPLOAD_PURPOSE_VERIFICATION_DOC: "VERIFICATION_DOC",
}
PURPOSE_VALUES = {name: value for value, name in PURPOSES.items()}
STATES = {
    name: getattr(upload_pb2, f"UPLOAD_STATE_{name}")
    for name in ("PENDING", "UPLOADED", "READY", "REJECTED", "EXPIRED")
}


def message(row: dict[str, Any], download: str = "", thumbnail: str = "") -> upload_pb2.Upload:
    return upload_pb2.Upload(
        upload_id=str(row["id"]),
        purpose=PURPOSE_VALUES[row["purpose"]],
        state=STATES[row["state"]],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"] or 0,
        width=row["width"] or 0,
        height=row["height"] or 0,
        rejection_reason=row["rejection_reason"] or "",
        download_url=download,
        thumbnail_url=thumbnail,
        created_at=convert.timestamp(row["created_at"]),
    )


class UploadService(upload_pb2_grpc.UploadServiceServicer):
    def __init__(self, db: Database, storage: Storage) -> None:
        self._db = db
        self._storage = storage

    async def CreateUpload(
        self, request: upload_pb2.CreateUploadRequest, context: Context
    ) -> upload_pb2.CreateUploadResponse:
        purpose = PURPOSES.get(request.purpose)
        if purpose is None:
            raise invalid("purpose", "must be AVATAR, PROOF_PHOTO or VERIFICATION_DOC")
        row, post = await uploads.create(
            self._db,
            self._storage,
            caller.current().user_id,
            purpose,
            request.content_type.strip().lower(),
            request.size_bytes,
        )
        return upload_pb2.CreateUploadResponse(
            upload=message(row),
            post=upload_pb2.PresignedPost(
                url=post.url, fields=post.fields, expires_at=convert.timestamp(post.expires_at)
            ),
        )

    async def CompleteUpload(
        self, request: upload_pb2.CompleteUploadRequest, context: Context
    ) -> upload_pb2.CompleteUploadResponse:
        upload_id = validation.uuid_id(request.upload_id, "upload_id")
        row = await uploads.complete(self._db, self._storage, caller.current().user_id, upload_id)
        return upload_pb2.CompleteUploadResponse(upload=message(row))

    async def GetUpload(
        self, request: upload_pb2.GetUploadRequest, context: Context
    ) -> upload_pb2.GetUploadResponse:
        row = await uploads.get(
            self._db, caller.current(), validation.uuid_id(request.upload_id, "upload_id")
        )
        download, thumbnail = await asyncio.to_thread(uploads.links, self._storage, row)
        return upload_pb2.GetUploadResponse(upload=message(row, download, thumbnail))
