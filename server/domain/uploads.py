"""Uploads: a presigned POST to S3, a HEAD check on completion, then post-processing by the
upload.process job (jobs/uploads.py). Only READY uploads can be attached to anything (the
database checks that too).

Keys are `<prefix>/<owner>/<upload>`, except message photos: `messages/<task>/<upload>`, made
for one task's thread by its poster or worker (server/domain/messages.py). An API version that
does not know a purpose passes the purposes it shows (`shown`): another is NOT_FOUND to it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection

from server import outbox
from server.caller import Caller
from server.db import Database, Rows
from server.domain import messages
from server.domain.records import Upload, UploadPurpose, UploadState
from server.errors import HxError, invalid
from server.storage import Head, PresignedPost, Storage

_CREATE = Rows("create_upload", Upload)
_GET = Rows("get_upload", Upload)
LOCK = Rows("lock_upload", Upload)
_MARK_UPLOADED = Rows("mark_uploaded", Upload)
REJECT = Rows("reject_upload", Upload)
READY = Rows("ready_upload", Upload)
EVERY_PURPOSE = frozenset(UploadPurpose)


def check_type(storage: Storage, purpose: UploadPurpose, content_type: str) -> str:
    """A declared type the purpose allows (HX301 naming `content_type` otherwise)."""
    allowed = storage.rules[purpose].content_types
    if content_type not in allowed:
        raise invalid("content_type", f"must be one of {', '.join(sorted(allowed))}")
    return content_type


def check_size(storage: Storage, purpose: UploadPurpose, size: int) -> int:
    """A declared size the purpose allows (HX301 naming `size_bytes` otherwise)."""
    most = storage.rules[purpose].max_bytes
    if not 1 <= size <= most:
        raise invalid("size_bytes", f"must be between 1 and {most} bytes")
    return size


async def create(
    db: Database,
    storage: Storage,
    owner_id: str,
    purpose: UploadPurpose,
    content_type: str,
    size: int,
    task_id: str | None = None,
) -> tuple[Upload, PresignedPost]:
    """A PENDING upload and where to POST it. A MESSAGE_PHOTO names the task whose thread it is
    for (`task_id`, required: HX301; the caller one of its parties: HX302 / HX802); no other
    purpose takes one."""
    rules = storage.rules[purpose]
    check_type(storage, purpose, content_type)
    check_size(storage, purpose, size)
    upload_id = str(uuid.uuid4())
    if purpose is UploadPurpose.MESSAGE_PHOTO:
        if task_id is None:
            raise invalid("task_id", "is required for a MESSAGE_PHOTO")
        await messages.require_party(db, owner_id, task_id)
        key = f"{rules.prefix}/{task_id}/{upload_id}"
    elif task_id is not None:
        raise invalid("task_id", "is only for a MESSAGE_PHOTO")
    else:
        key = f"{rules.prefix}/{owner_id}/{upload_id}"
    row = await db.one(
        _CREATE,
        id=upload_id,
        owner_id=owner_id,
        purpose=purpose,
        content_type=content_type,
        declared_size=size,
        object_key=key,
    )
    assert row is not None
    post = await asyncio.to_thread(storage.presigned_post, key, content_type, size)
    return row, post


async def complete(
    db: Database,
    storage: Storage,
    owner_id: str,
    upload_id: str,
    *,
    shown: Collection[UploadPurpose] = EVERY_PURPOSE,
) -> Upload:
    """Check the object S3 holds against what was declared; queue its processing, or refuse it
    (REJECTED, the object deleted) when its size or type breaks the limits. moto does not
    enforce the POST policy, and a misbehaving S3 client could; this check holds regardless."""
    failure: HxError | None = None
    async with db.transaction() as tx:
        upload = await tx.one(LOCK, id=upload_id)
        if upload is None or upload.purpose not in shown:
            raise HxError("HX302", "No such upload.")
        if upload.owner_id != owner_id:
            raise HxError("HX202", "This upload is not yours.")
        if upload.state in (UploadState.UPLOADED, UploadState.READY):
            return upload  # completed before: nothing to do twice
        if upload.state is not UploadState.PENDING:
            raise HxError("HX003", f"This upload is {upload.state}.")
        head = await asyncio.to_thread(storage.head, upload.object_key)
        if head is None:
            raise HxError("HX304", "The file has not been uploaded yet.")
        limit = min(upload.declared_size, storage.rules[upload.purpose].max_bytes)
        problem = _problem(head, upload.content_type, limit)
        upload = await tx.one(_MARK_UPLOADED, id=upload_id)
        if problem is None:
            await outbox.enqueue(tx, "upload.process", {"upload_id": upload_id})
        else:
            upload = await tx.one(REJECT, id=upload_id, reason=problem[1])
            key = upload.object_key if upload else ""
            tx.on_commit(lambda: asyncio.to_thread(storage.delete, key))
            failure = invalid(problem[0], f"Refused: {problem[1]}.")
    if failure is not None:
        raise failure
    assert upload is not None
    return upload


def _problem(head: Head, declared_type: str, limit: int) -> tuple[str, str] | None:
    """What is wrong with the stored object, as (field, reason); None when nothing is."""
    if head.size == 0:
        return "size_bytes", "the file is empty"
    if head.size > limit:
        return "size_bytes", f"the file has {head.size} bytes, more than the {limit} declared"
    if head.content_type != declared_type:
        return (
            "content_type",
            f"the file was sent as {head.content_type or 'no type'}, not {declared_type}",
        )
    return None


async def get(
    db: Database,
    who: Caller,
    upload_id: str,
    *,
    shown: Collection[UploadPurpose] = EVERY_PURPOSE,
) -> Upload:
    upload = await db.one(_GET, id=upload_id)
    if upload is None or upload.purpose not in shown:
        raise HxError("HX302", "No such upload.")
    reviewer = who.is_admin and upload.purpose is UploadPurpose.VERIFICATION_DOC
    if upload.owner_id != who.user_id and not reviewer:
        raise HxError("HX202", "This upload is not yours.")
    return upload


def links(storage: Storage, upload: Upload) -> tuple[str, str]:
    """Short-lived links to a READY upload and its thumbnail."""
    if upload.state is not UploadState.READY:
        return "", ""
    lifetime = storage.rules[upload.purpose].get_lifetime
    thumbnail = upload.thumbnail_key
    return (
        storage.presigned_get(upload.object_key, lifetime),
        storage.presigned_get(thumbnail, lifetime) if thumbnail else "",
    )
