"""upload.process: turn a completed upload into a clean, READY file — or refuse it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import dramatiq
from loguru import logger

from jobs import media, runtime
from jobs.broker import broker
from jobs.once import once
from server import metrics
from server.db import Session
from server.domain import uploads
from server.domain.records import UploadState


@dramatiq.actor(
    actor_name="upload.process", broker=broker, queue_name="uploads", time_limit=120_000
)
async def process(outbox_id: int, payload: dict[str, Any]) -> None:
    upload_id = payload["upload_id"]
    storage = runtime.storage()
    started = time.perf_counter()
    outcome: dict[str, Any] = {}

    async def work(tx: Session) -> None:
        upload = await tx.one(uploads.LOCK, id=upload_id)
        if upload is None or upload.state is not UploadState.UPLOADED:
            outcome["state"] = upload.state.value if upload else "missing"
            return
        key = upload.object_key
        data = await asyncio.to_thread(storage.read, key)
        try:
            cleaned = await asyncio.to_thread(media.clean, data, upload.content_type)
        except media.Refused as refused:
            await tx.execute("reject_upload", id=upload_id, reason=str(refused))
            tx.on_commit(lambda: asyncio.to_thread(storage.delete, key))
            metrics.UPLOAD_REJECTIONS.labels(upload.purpose.value).inc()
            outcome.update(state="REJECTED", reason=str(refused), purpose=upload.purpose.value)
            return
        await asyncio.to_thread(storage.write, key, cleaned.data, upload.content_type)
        thumbnail_key = None
        if cleaned.thumbnail is not None:
            thumbnail_key = f"{key}.thumb.jpg"
            await asyncio.to_thread(storage.write, thumbnail_key, cleaned.thumbnail, "image/jpeg")
        await tx.execute(
            "ready_upload",
            id=upload_id,
            size_bytes=len(cleaned.data),
            sha256=cleaned.sha256,
            width=cleaned.width,
            height=cleaned.height,
            thumbnail_key=thumbnail_key,
        )
        outcome.update(state="READY", purpose=upload.purpose.value)

    await once(outbox_id, "upload.process", work)
    if outcome.get("purpose") == "VERIFICATION_DOC":
        metrics.VERIFICATION_PROCESSING_SECONDS.observe(time.perf_counter() - started)
    logger.bind(upload_id=upload_id, **outcome).info("upload processed")
