"""Task messaging: one thread per task between its poster and its worker (DOMAIN.md "Task
messaging").

The database is the authority (migration 0034): its insert trigger checks the sender is a
party (HX802), the account is active (HX405), the thread is open (HX801), the photos are the
sender's READY message photos of this thread (HX803), and the limits (HX501: 10 messages an
hour per sender and thread, 100 a day per sender, 50 photos a day), counted in the database so
that they hold across server processes and without Redis; its CHECKs refuse long or empty text
(HX804) and contact details (HX812). `check_content` applies the same rules to a request first,
so that the error names the field.

Readers: the two parties; admins only on a task that is or was DISPUTED, each admin read
written to `admin_actions` in the same transaction. Parties do not see hidden messages; admins
do. A sender sees when their message was read unless its recipient turned read receipts off.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger
from psycopg.types.json import Jsonb

from server.caller import Caller
from server.db import Database, Rows, Session
from server.domain.records import TaskState
from server.errors import HxError
from server.storage import Storage

TEXT_MAX, CAPTION_MAX, PHOTOS_MAX, PREVIEW_MAX = 500, 200, 3, 50
PHOTO_LINK_LIFETIME = timedelta(hours=1)

# The same patterns as the database's message_has_contact() (migration 0034): a link, an email
# address, a phone number (10 digits or more, at most two of " ().+-" between digits).
_CONTACT = (
    re.compile(r"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}", re.IGNORECASE),
    re.compile(r"(https?://|www\.)", re.IGNORECASE),
    re.compile(
        r"[a-z0-9-]+\.(com|net|org|io|app|co|me|info|biz|ly|gg|xyz|dev|link|us)([^a-z0-9]|$)",
        re.IGNORECASE,
    ),
    re.compile(r"[0-9]([ ().+-]{0,2}[0-9]){9}"),
)


@dataclass(frozen=True, slots=True)
class Message:
    """A message as one reader may see it (read_at: None for a sender whose recipient keeps
    read receipts off; hidden_*: set only when an admin hid it, shown to admins only)."""

    id: str
    task_id: str
    sender_id: str
    recipient_id: str
    body: str | None
    photo_ids: list[str]
    caption: str | None
    created_at: datetime
    read_at: datetime | None
    hidden_at: datetime | None
    hidden_by: str | None
    hidden_reason: str | None


@dataclass(frozen=True, slots=True)
class Photo:
    """What a message photo's links are made from."""

    id: str
    object_key: str
    thumbnail_key: str | None
    width: int | None
    height: int | None


@dataclass(frozen=True, slots=True)
class PhotoLinks:
    upload_id: str
    download_url: str
    thumbnail_url: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Thread:
    """A page of a thread, with the links to its photos (by upload id)."""

    messages: list[Message]
    photos: dict[str, Photo]


@dataclass(frozen=True, slots=True)
class ThreadUnread:
    task_id: str
    unread: int
    total: int


@dataclass(frozen=True, slots=True)
class UnreadCounts:
    threads: list[ThreadUnread]
    total: int


@dataclass(frozen=True, slots=True)
class Purged:
    """One batch of the purge: how many messages went, and the S3 keys of their photos."""

    messages: int
    object_keys: list[str]


@dataclass(frozen=True, slots=True)
class ThreadTask:
    id: str
    poster_id: str
    worker_id: str | None
    state: TaskState
    ever_disputed: bool


_TASK = Rows("thread_task", ThreadTask)
_SEND = Rows("send_message", Message)
_LIST = Rows("list_thread", Message)
_PHOTOS = Rows("message_photos", Photo)
_UNREAD = Rows("unread_counts", ThreadUnread)
_LOCK = Rows("lock_message", Message)
_HIDE = Rows("hide_message", Message)
_PURGE = Rows("purge_messages", Purged)


def has_contact(text: str) -> bool:
    return any(pattern.search(text) for pattern in _CONTACT)


def check_content(text: str, photo_ids: Sequence[str], caption: str) -> None:
    """The request's content by the database's rules, naming the field: text of at most 500
    characters (HX804), text or 1 to 3 photos (HX804 / HX803), a caption of at most 200
    characters and only with photos, no contact details (HX812). Text and caption arrive
    stripped of surrounding blanks."""
    if len(text) > TEXT_MAX:
        raise HxError("HX804", f"A message has at most {TEXT_MAX} characters.", field="text")
    if len(photo_ids) > PHOTOS_MAX:
        raise HxError(
            "HX803", f"A message has at most {PHOTOS_MAX} photos.", field="photo_upload_ids"
        )
    if len(set(photo_ids)) != len(photo_ids):
        raise HxError("HX803", "A photo appears twice.", field="photo_upload_ids")
    if not text and not photo_ids:
        raise HxError("HX804", "A message needs text or a photo.", field="text")
    if len(caption) > CAPTION_MAX:
        raise HxError("HX804", f"A caption has at most {CAPTION_MAX} characters.", field="caption")
    if caption and not photo_ids:
        raise HxError("HX301", "A caption goes with photos.", field="caption")
    for value, field in ((text, "text"), (caption, "caption")):
        if has_contact(value):
            raise HxError(
                "HX812",
                "Keep contact details, links and email addresses out of messages.",
                field=field,
            )


def preview(text: str, photos: int) -> str:
    """NEW_MESSAGE's body: the text's first 50 characters (49 and an ellipsis when longer), or
    what the message carries."""
    if text:
        flat = " ".join(text.split())
        return flat if len(flat) <= PREVIEW_MAX else flat[: PREVIEW_MAX - 1] + "…"
    return "Sent a photo" if photos == 1 else f"Sent {photos} photos"


async def send(
    db: Database, sender_id: str, task_id: str, text: str, photo_ids: Sequence[str], caption: str
) -> Message:
    """Send a message (content checked with `check_content` first); the recipient is told. One
    statement: the insert trigger refuses a stranger (HX802), an unknown task (HX302), a closed
    thread (HX801), an inactive account (HX405), foreign or unready photos (HX803) and a sender
    over a limit (HX501, here given the delay until a message may be sent again)."""
    try:
        async with db.transaction() as tx:
            sent = await tx.one(
                _SEND,
                task_id=task_id,
                sender_id=sender_id,
                body=text or None,
                photo_ids=list(photo_ids),
                caption=caption or None,
                preview=preview(text, len(photo_ids)),
            )
    except HxError as refused:
        if refused.code != "HX501":
            raise
        wait = await db.scalar(
            "message_retry_after", float, sender_id=sender_id, task_id=task_id,
            photos=len(photo_ids),
        )  # fmt: skip
        raise HxError("HX501", f"Too many messages: {refused.message}.",
                      retry_after_seconds=round(wait or 1.0, 3)) from refused  # fmt: skip
    assert sent is not None
    return sent


async def require_party(db: Database | Session, user_id: str, task_id: str) -> ThreadTask:
    """The task, when `user_id` is its poster or worker (HX302 / HX802 otherwise)."""
    task = await db.one(_TASK, task_id=task_id)
    if task is None:
        raise HxError("HX302", "No such task.")
    if user_id not in (task.poster_id, task.worker_id):
        raise HxError("HX802", "Only the task's poster and worker take part in its thread.")
    return task


async def list_thread(
    db: Database, who: Caller, task_id: str, after: list[str] | None, limit: int
) -> Thread:
    """A page of the thread, newest first: for its parties, and for admins when the task is
    or was disputed (each such read logged)."""
    created, message = after if after else (None, None)
    async with db.transaction() as tx:
        task = await tx.one(_TASK, task_id=task_id)
        if task is None:
            raise HxError("HX302", "No such task.")
        party = who.user_id in (task.poster_id, task.worker_id)
        if not party and not (who.is_admin and task.ever_disputed):
            if who.is_admin:
                raise HxError("HX802", "Admins read only the threads of disputed tasks.")
            raise HxError("HX802", "Only the task's poster and worker read its thread.")
        found = await tx.all(
            _LIST,
            task_id=task_id,
            viewer_id=who.user_id,
            include_hidden=not party,
            after_created=created,
            after_id=message,
            limit=limit,
        )
        if not party:
            await tx.execute(
                "message_admin_log",
                actor_id=who.user_id,
                action="message.read_thread",
                target_kind="task",
                target_id=task_id,
                reason="Read the thread of a disputed task.",
                details=Jsonb({"messages": len(found), "first_page": after is None}),
            )
        ids = sorted({p for m in found for p in m.photo_ids})
        photos = await tx.all(_PHOTOS, ids=ids) if ids else []
    return Thread(found, {p.id: p for p in photos})


def photo_links(storage: Storage, photos: Sequence[Photo]) -> dict[str, PhotoLinks]:
    """Short-lived links (1 hour) to photos and their thumbnails (blocking: signs locally)."""
    return {
        p.id: PhotoLinks(
            p.id,
            storage.presigned_get(p.object_key, PHOTO_LINK_LIFETIME),
            storage.presigned_get(p.thumbnail_key, PHOTO_LINK_LIFETIME) if p.thumbnail_key else "",
            p.width or 0,
            p.height or 0,
        )
        for p in photos
    }


async def mark_read(db: Database, user_id: str, task_id: str, up_to: str | None) -> int:
    """Mark the caller's unread messages of the thread read, up to the message `up_to` (all of
    them without one), and their NEW_MESSAGE notifications; how many messages were marked.
    Allowed on closed threads too."""
    async with db.transaction() as tx:
        await require_party(tx, user_id, task_id)
        if up_to is not None and not await tx.scalar(
            "message_in_thread", bool, message_id=up_to, task_id=task_id
        ):
            raise HxError("HX302", "No such message in this thread.", field="up_to_id")
        marked = await tx.scalar(
            "mark_thread_read", int, task_id=task_id, user_id=user_id, up_to=up_to
        )
        return marked or 0


async def unread_counts(db: Database, user_id: str) -> UnreadCounts:
    rows = await db.all(_UNREAD, user_id=user_id)
    return UnreadCounts(rows, rows[0].total if rows else 0)


async def read_receipts(db: Database, user_id: str) -> bool:
    """Whether the user's senders see when the user read their messages (on by default)."""
    return bool(await db.scalar("message_settings_of", bool, user_id=user_id))


async def set_read_receipts(db: Database, user_id: str, enabled: bool) -> bool:
    return bool(await db.scalar("set_read_receipts", bool, user_id=user_id, enabled=enabled))


async def hide(db: Database, admin_id: str, message_id: str, reason: str) -> Message:
    """Hide a message from its thread's parties (admins still see it), logged; hiding a hidden
    message again answers with it as it is."""
    async with db.transaction() as tx:
        message = await tx.one(_LOCK, message_id=message_id)
        if message is None:
            raise HxError("HX302", "No such message.")
        if message.hidden_at is not None:
            return message
        hidden = await tx.one(_HIDE, message_id=message_id, admin_id=admin_id, reason=reason)
        await tx.execute(
            "message_admin_log",
            actor_id=admin_id,
            action="message.hide",
            target_kind="message",
            target_id=message_id,
            reason=reason,
            details=Jsonb({"task_id": message.task_id}),
        )
    assert hidden is not None
    return hidden


async def purge(db: Database, storage: Storage, batch: int = 5000) -> tuple[int, int]:
    """message.purge: delete the messages of tasks that ended 90 days ago and were never
    disputed, with their photos (upload rows in the same statement, then the S3 objects);
    how many messages and objects were deleted. An object whose deletion fails is logged and
    left behind (nothing refers to it any more)."""
    messages_deleted = objects_deleted = 0
    while True:
        purged = await db.one(_PURGE, batch=batch)
        assert purged is not None
        messages_deleted += purged.messages
        for key in purged.object_keys:
            try:
                await asyncio.to_thread(storage.delete, key)
            except Exception as exc:  # the rows are gone; an orphaned object is only a cost
                logger.bind(object_key=key).opt(exception=exc).warning(
                    "could not delete a purged message photo"
                )
            else:
                objects_deleted += 1
        if purged.messages < batch:
            return messages_deleted, objects_deleted
