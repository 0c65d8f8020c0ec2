"""A local stand-in for SendGrid and Twilio that captures what their SDKs send.

It speaks the two providers' HTTP APIs (SendGrid `POST /v3/mail/send`, Twilio
`POST /2010-04-01/Accounts/{sid}/Messages.json`) so that the real SDK code paths run in dev and
tests, and keeps what it received for inspection:

    GET    /captured[?kind=email|sms]   what was accepted, oldest first (JSON)
    DELETE /captured                    forget it
    POST   /control/fail {"count": n, "status": 503}   fail the next n provider requests
    POST   /control/hold {"seconds": s}  hold each provider request s seconds before deciding
                                         (0: stop); a client gone meanwhile (killed) has sent
                                         nothing: its request is not accepted
    GET    /control/held                 the requests held now: [{"peer_port": p, "held_s": t}]

`python -m server capture` runs it (make run does); `python -m server captured` lists it.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from loguru import logger

from server.logs import redact_email, redact_phone


@dataclass
class CaptureState:
    captured: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    fail_remaining: int = 0
    fail_status: int = 503
    hold_seconds: float = 0.0
    held: dict[int, tuple[int, float]] = field(default_factory=dict)  # id -> (peer port, since)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_failure(self) -> int | None:
        self.attempts += 1
        if self.fail_remaining > 0:
            self.fail_remaining -= 1
            return self.fail_status
        return None


STATE = web.AppKey("state", CaptureState)


async def _hold(state: CaptureState, request: web.Request) -> bool:
    """Hold the request as /control/hold says; False when its client went away meanwhile."""
    if state.hold_seconds <= 0:
        return True
    peer = request.transport.get_extra_info("peername") if request.transport else None
    ticket = id(request)
    state.held[ticket] = (int(peer[1]) if peer else 0, time.monotonic())
    try:
        deadline = time.monotonic() + state.hold_seconds
        while time.monotonic() < deadline and state.hold_seconds > 0:
            await asyncio.sleep(0.05)
            if request.transport is None or request.transport.is_closing():
                return False
    finally:
        del state.held[ticket]
    return request.transport is not None and not request.transport.is_closing()


def build_app(state: CaptureState | None = None) -> web.Application:
    state = state or CaptureState()

    async def sendgrid(request: web.Request) -> web.Response:
        if not await _hold(state, request):
            return web.Response(status=499)  # nobody is listening any more
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response(
                {"errors": [{"message": "authorization required"}]}, status=401
            )
        if (failure := state.next_failure()) is not None:
            return web.json_response({"errors": [{"message": "injected failure"}]}, status=failure)
        body = await request.json()
        try:
            to = [r["email"] for p in body["personalizations"] for r in p["to"]]
            contents = {c["type"]: c["value"] for c in body["content"]}
            entry = {
                "kind": "email",
                "id": next(state._ids),
                "to": to,
                "from": body["from"],
                "subject": body.get("subject") or body["personalizations"][0].get("subject"),
                "text": contents.get("text/plain"),
                "html": contents.get("text/html"),
                "received_at": datetime.now(UTC).isoformat(),
                "request": body,
            }
        except (KeyError, TypeError) as exc:
            return web.json_response(
                {"errors": [{"message": f"malformed request: {exc}"}]}, status=400
            )
        state.captured.append(entry)
        logger.bind(to=[redact_email(a) for a in to], subject=entry["subject"]).info(
            "captured email"
        )
        return web.Response(status=202)

    async def twilio(request: web.Request) -> web.Response:
        if not await _hold(state, request):
            return web.Response(status=499)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return web.json_response(
                {"code": 20003, "message": "Authenticate", "status": 401}, status=401
            )
        account = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
        if account != request.match_info["sid"]:
            return web.json_response(
                {"code": 20003, "message": "Authenticate", "status": 401}, status=401
            )
        if (failure := state.next_failure()) is not None:
            return web.json_response(
                {"code": 20500, "message": "injected failure", "status": failure}, status=failure
            )
        form = await request.post()
        missing = [name for name in ("To", "From", "Body") if not form.get(name)]
        if missing:
            return web.json_response(
                {"code": 21604, "message": f"missing {', '.join(missing)}", "status": 400},
                status=400,
            )
        number = next(state._ids)
        sid = f"SM{number:032x}"
        to, sender, text = str(form["To"]), str(form["From"]), str(form["Body"])
        entry = {
            "kind": "sms",
            "id": number,
            "sid": sid,
            "to": to,
            "from": sender,
            "body": text,
            "received_at": datetime.now(UTC).isoformat(),
        }
        state.captured.append(entry)
        logger.bind(to=redact_phone(to)).info("captured sms")
        now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        return web.json_response(
            {
                "sid": sid,
                "account_sid": account,
                "to": to,
                "from": sender,
                "body": text,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "date_created": now,
                "date_updated": now,
                "uri": f"{request.path[:-5]}/{sid}.json",
            },
            status=201,
        )

    async def captured(request: web.Request) -> web.Response:
        kind = request.query.get("kind")
        return web.json_response([c for c in state.captured if kind in (None, c["kind"])])

    async def forget(_: web.Request) -> web.Response:
        state.captured.clear()
        return web.Response(status=204)

    async def control_fail(request: web.Request) -> web.Response:
        body = await request.json()
        state.fail_remaining = int(body.get("count", 1))
        state.fail_status = int(body.get("status", 503))
        return web.json_response({"fail_remaining": state.fail_remaining})

    async def control_hold(request: web.Request) -> web.Response:
        body = await request.json()
        state.hold_seconds = float(body.get("seconds", 0))
        return web.json_response({"hold_seconds": state.hold_seconds})

    async def control_held(_: web.Request) -> web.Response:
        now = time.monotonic()
        held = [{"peer_port": port, "held_s": now - since} for port, since in state.held.values()]
        return web.json_response(held)

    app = web.Application()
    app[STATE] = state
    app.router.add_post("/v3/mail/send", sendgrid)
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", twilio)
    app.router.add_get("/captured", captured)
    app.router.add_delete("/captured", forget)
    app.router.add_post("/control/fail", control_fail)
    app.router.add_post("/control/hold", control_hold)
    app.router.add_get("/control/held", control_held)
    return app
