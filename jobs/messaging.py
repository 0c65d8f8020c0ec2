"""email.send and sms.send: outbound messages from outbox rows, through the providers' SDKs.

Payload: {"template": <name>, "to": <address or E.164 number>, "params": {...}, "secrets": {...}}.
The message is rendered before anything is claimed (a broken template fails fast and is not
retried), then sent once per outbox row (jobs/once.py). Logs name the template and a redacted
recipient, never the address, the number or the text.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dramatiq
from loguru import logger

from jobs import runtime
from jobs.broker import broker
from jobs.once import once
from jobs.providers import PermanentFailure
from jobs.templates import UnknownTemplate, render_email, render_sms
from server.db import Session
from server.logs import redact_email, redact_phone

_NOT_RETRIED = (PermanentFailure, UnknownTemplate, KeyError)


def _params(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload.get("params", {}), **payload.get("secrets", {})}


@dramatiq.actor(
    actor_name="email.send",
    broker=broker,
    queue_name="messages",
    time_limit=60_000,
    throws=_NOT_RETRIED,
)
async def send_email(outbox_id: int, payload: dict[str, Any]) -> None:
    to, template = payload["to"], payload["template"]
    email = render_email(template, _params(payload))

    async def deliver(_: Session) -> None:
        await asyncio.to_thread(runtime.providers().send_email, to, email)

    sent = await once(outbox_id, "email.send", deliver)
    logger.bind(template=template, to=redact_email(to), sent=sent).info("email handled")


@dramatiq.actor(
    actor_name="sms.send",
    broker=broker,
    queue_name="messages",
    time_limit=60_000,
    throws=_NOT_RETRIED,
)
async def send_sms(outbox_id: int, payload: dict[str, Any]) -> None:
    to, template = payload["to"], payload["template"]
    body = render_sms(template, _params(payload))

    async def deliver(_: Session) -> None:
        await asyncio.to_thread(runtime.providers().send_sms, to, body)

    sent = await once(outbox_id, "sms.send", deliver)
    logger.bind(template=template, to=redact_phone(to), sent=sent).info("sms handled")
