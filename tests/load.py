"""A load of real calls through real channels, recording how each one ended.

The reliability tests run it against a server while they break something, then check every
outcome: OK, or UNAVAILABLE from the server with a retry delay (RetryInfo), or UNAVAILABLE from
the transport (the server is not listening: nothing answered). Callers behave as a well-written
client does: on UNAVAILABLE they wait the retry delay the server gave (or a short pause) before
their next call, and they never retry CANCELLED or UNKNOWN by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio

from hustle.v1 import system_pb2, system_pb2_grpc
from tests.helpers import error_details
from tests.processes import Process

Call = Callable[[aio.Channel, int], Awaitable[Any]]
RETRYABLE = frozenset({"ok", "unavailable-retry", "unavailable-transport"})


@dataclass(frozen=True, slots=True)
class Outcome:
    at: float  # time.monotonic() when the call ended
    call: str
    kind: str  # ok | unavailable-retry | unavailable-transport | <status code name, lower case>
    detail: str = ""
    retry_after: float = 0.0


def outcome_of(call: str, error: aio.AioRpcError) -> Outcome:
    code = error.code()
    now = time.monotonic()
    if code == grpc.StatusCode.UNAVAILABLE:
        details = error_details(error)
        retry = details.get("RetryInfo")
        if retry is not None:
            delay = retry.retry_delay  # type: ignore[attr-defined]
            return Outcome(now, call, "unavailable-retry", "", delay.seconds + delay.nanos / 1e9)
        if "ErrorInfo" in details:  # the server answered UNAVAILABLE without saying when
            return Outcome(now, call, "unavailable-no-retry-info", error.details() or "")
        return Outcome(now, call, "unavailable-transport", error.details() or "")
    return Outcome(now, call, code.name.lower(), error.details() or "")


async def server_info(channel: aio.Channel, _: int) -> Any:
    return await system_pb2_grpc.SystemServiceStub(channel).GetServerInfo(
        system_pb2.GetServerInfoRequest(), timeout=30
    )


@dataclass
class Load:
    """`concurrency` callers over `channels` channels, each making `calls` in turn (closed loop,
    or paced to `rate` calls per second in all), until `stop()`."""

    target: str
    calls: Sequence[tuple[str, Call]] = (("GetServerInfo", server_info),)
    concurrency: int = 16
    channels: int = 4
    rate: float | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _open: list[aio.Channel] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    async def __aenter__(self) -> Load:
        self._open = [aio.insecure_channel(self.target) for _ in range(self.channels)]
        self._tasks = [
            asyncio.create_task(self._caller(i, self._open[i % self.channels]))
            for i in range(self.concurrency)
        ]
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for channel in self._open:
            await channel.close()
        self._open = []

    async def _caller(self, index: int, channel: aio.Channel) -> None:
        pace = self.concurrency / self.rate if self.rate else 0.0
        position = index
        while not self._stopping.is_set():
            started = time.monotonic()
            name, call = self.calls[position % len(self.calls)]
            position += 1
            try:
                await call(channel, next(self._counter))
            except aio.AioRpcError as error:
                found = outcome_of(name, error)
            else:
                found = Outcome(time.monotonic(), name, "ok")
            self.outcomes.append(found)
            wait = pace - (time.monotonic() - started)
            if found.kind == "unavailable-retry":
                wait = max(wait, found.retry_after)
            elif found.kind == "unavailable-transport":
                wait = max(wait, 0.05)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), wait)

    def between(self, start: float, end: float = float("inf")) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.at < end]


def unexpected(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The outcomes that are neither OK nor a retryable UNAVAILABLE."""
    return [o for o in outcomes if o.kind not in RETRYABLE]


async def load_until_gone(
    port: int, process: Process, *, concurrency: int, channels: int, warmup: float
) -> list[Outcome]:
    """Load the server, SIGTERM it after `warmup` seconds, keep calling until it has exited."""
    async with Load(f"127.0.0.1:{port}", concurrency=concurrency, channels=channels) as load:
        await asyncio.sleep(warmup)
        process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while process.popen.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # a last round of calls against the stopped server
    return load.outcomes
