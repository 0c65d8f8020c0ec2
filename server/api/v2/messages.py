"""hustle.v2.MessageService: input checks and translation; the rules live in
server.domain.messages (and, last, in the database)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from grpc import aio

from hustle.v2 import message_pb2, message_pb2_grpc
from server import caller, pagination, validation
from server.api.v2 import convert, lists
from server.config import Settings
from server.db import Database
from server.domain import messages
from server.storage import Storage
from server.validation import Checks

Context = aio.ServicerContext[Any, Any]
M = message_pb2
THREAD = lists.kind("messages")


def to_message(
    record: messages.Message, links: Mapping[str, messages.PhotoLinks], *, admin_view: bool
) -> M.Message:
    photos = []
    for upload_id in record.photo_ids:
        link = links.get(upload_id)
        photos.append(
            M.MessagePhoto(
                upload_id=upload_id,
                download_url=link.download_url if link else "",
                thumbnail_url=link.thumbnail_url if link else "",
                width=link.width if link else 0,
                height=link.height if link else 0,
            )
        )
    return M.Message(
        message_id=record.id,
        task_id=record.task_id,
        sender_id=record.sender_id,
        recipient_id=record.recipient_id,
        text=record.body or "",
        photos=photos,
        caption=record.caption or "",
        created_at=convert.timestamp(record.created_at),
        read_at=convert.timestamp(record.read_at),
        hidden_at=convert.timestamp(record.hidden_at) if admin_view else None,
        hidden_reason=(record.hidden_reason or "") if admin_view else "",
    )


def settings_of(read_receipts: bool) -> M.MessageSettings:
    return M.MessageSettings(read_receipts=read_receipts)


class MessageService(message_pb2_grpc.MessageServiceServicer):
    def __init__(self, db: Database, storage: Storage, settings: Settings) -> None:
        self._db = db
        self._storage = storage
        self._secret = settings.secret_key.get_secret_value()

    async def SendMessage(
        self, request: M.SendMessageRequest, context: Context
    ) -> M.SendMessageResponse:
        text, caption = request.text.strip(), request.caption.strip()
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            photo_ids = [
                check(validation.uuid_id, value, f"photo_upload_ids[{i}]")
                for i, value in enumerate(request.photo_upload_ids)
            ]
            check(validation.request_id, request.request_id)
        messages.check_content(text, photo_ids, caption)
        sent = await messages.send(
            self._db, caller.current().user_id, task_id, text, photo_ids, caption
        )
        return M.SendMessageResponse(message=to_message(sent, {}, admin_view=False))

    async def ListMessages(
        self, request: M.ListMessagesRequest, context: Context
    ) -> M.ListMessagesResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            limit = lists.page_size(check, request.page_size)
            after = lists.after(check, self._secret, THREAD, request.page_token)
        who = caller.current()
        thread = await messages.list_thread(self._db, who, task_id, after, limit + 1)
        page, token = pagination.split_keyed(self._secret, THREAD, thread.messages, limit)
        shown = [thread.photos[p] for m in page for p in m.photo_ids if p in thread.photos]
        links = await asyncio.to_thread(messages.photo_links, self._storage, shown) if shown else {}
        admin_view = who.is_admin
        return M.ListMessagesResponse(
            messages=[to_message(m, links, admin_view=admin_view) for m in page],
            next_page_token=token,
        )

    async def MarkThreadRead(
        self, request: M.MarkThreadReadRequest, context: Context
    ) -> M.MarkThreadReadResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            up_to = None
            if request.up_to_id:
                up_to = check(validation.uuid_id, request.up_to_id, "up_to_id")
        marked = await messages.mark_read(self._db, caller.current().user_id, task_id, up_to)
        return M.MarkThreadReadResponse(marked=marked)

    async def GetUnreadCounts(
        self, request: M.GetUnreadCountsRequest, context: Context
    ) -> M.GetUnreadCountsResponse:
        counts = await messages.unread_counts(self._db, caller.current().user_id)
        threads = [M.ThreadUnreadCount(task_id=t.task_id, unread=t.unread) for t in counts.threads]
        return M.GetUnreadCountsResponse(threads=threads, total=counts.total)

    async def GetMessageSettings(
        self, request: M.GetMessageSettingsRequest, context: Context
    ) -> M.GetMessageSettingsResponse:
        enabled = await messages.read_receipts(self._db, caller.current().user_id)
        return M.GetMessageSettingsResponse(settings=settings_of(enabled))

    async def SetReadReceipts(
        self, request: M.SetReadReceiptsRequest, context: Context
    ) -> M.SetReadReceiptsResponse:
        enabled = await messages.set_read_receipts(
            self._db, caller.current().user_id, request.enabled
        )
        return M.SetReadReceiptsResponse(settings=settings_of(enabled))

    async def HideMessage(
        self, request: M.HideMessageRequest, context: Context
    ) -> M.HideMessageResponse:
        with Checks() as check:
            message_id = check(validation.uuid_id, request.message_id, "message_id")
            reason = check(validation.text, request.reason, "reason", low=1, high=1000)
        hidden = await messages.hide(self._db, caller.current().user_id, message_id, reason)
        return M.HideMessageResponse(message=to_message(hidden, {}, admin_view=True))
