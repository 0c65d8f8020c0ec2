"""`python -m server memory`: the operator's side of /debug/memory (see server/http.py).

Server processes share the HTTP port (SO_REUSEPORT): each new TCP connection lands on one of
them. So every step (start, snapshot, stop) is sent on a fresh connection again and again until
every process in the `peers` the processes report has answered, within a bound. The steps are
idempotent per run id, and a process that already answered a snapshot is told so (`done`) and
skips taking another.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

ATTEMPTS_PER_PROCESS = 40  # new connections per process before giving up on reaching one
TIMEOUT_SECONDS = 60.0  # one request (a snapshot of a big heap takes a while)


class MemoryClientError(Exception):
    """The server refused, or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class Options:
    url: str
    token: str
    seconds: float
    top: int = 15
    frames: int = 1
    group_by: str = "lineno"
    keep: bool = False


def _post(options: Options, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the operator's own server URL
        options.url.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {options.token}",
            "Content-Type": "application/json",
            "Connection": "close",  # the next request must be free to reach another process
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            reply: dict[str, Any] = json.load(response)
            return reply
    except urllib.error.HTTPError as exc:
        try:
            why = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            why = exc.reason
        if exc.code == 404:
            why = "no /debug/memory here: is ADMIN_HTTP_TOKEN set on the server?"
        raise MemoryClientError(f"{path}: HTTP {exc.code}: {why}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise MemoryClientError(f"cannot reach {options.url}: {exc}") from None


def every_process(
    options: Options, path: str, body: dict[str, Any], *, tell_done: bool = False
) -> dict[int, dict[str, Any]]:
    """`path` answered by every process of the server, by pid."""
    answers: dict[int, dict[str, Any]] = {}
    peers: set[int] = set()
    attempts = 0
    while True:
        attempts += 1
        extra = {"done": sorted(answers)} if tell_done else {}
        reply = _post(options, path, {**body, **extra})
        if not reply.get("skipped"):
            answers.setdefault(int(reply["pid"]), reply)
        peers |= {int(pid) for pid in reply.get("peers", ())}
        peers.add(int(reply["pid"]))
        if peers <= answers.keys():
            return answers
        if attempts >= ATTEMPTS_PER_PROCESS * len(peers):
            missing = sorted(peers - answers.keys())
            raise MemoryClientError(
                f"{path}: process(es) {missing} never answered in {attempts} connections"
                f" (reached {sorted(answers)})"
            )


def _mib(n: float | None) -> str:
    return "?" if n is None else f"{n / 2**20:+.1f} MiB"


def report(answers: dict[int, dict[str, Any]], out: Any = sys.stdout) -> None:
    for pid in sorted(answers):
        answer = answers[pid]
        now = answer["traced_bytes"] / 2**20
        print(
            f"pid {pid}: Python heap {_mib(answer['grown_total_bytes'])} traced ({now:.1f} MiB"
            f" now), RSS {_mib(answer['rss_growth_bytes'])} over {answer['seconds']:.0f} s",
            file=out,
        )
        if not answer["top"]:
            print("    nothing grew", file=out)
        for entry in answer["top"]:
            print(
                f"    {_mib(entry['size_diff_bytes']):>12} {entry['count_diff']:>+9} blocks"
                f"  {entry['where']}",
                file=out,
            )
            for frame in entry.get("traceback", [])[1:]:
                print(f"{'':>35}{frame}", file=out)


def run(options: Options) -> int:
    run_id = f"mem-{uuid.uuid4().hex[:12]}"
    started = every_process(
        options, "/debug/memory/start", {"run": run_id, "frames": options.frames}
    )
    try:
        print(
            f"tracing {len(started)} process(es) {sorted(started)} for {options.seconds:g} s"
            " (send the traffic that leaks now)",
            file=sys.stderr,
            flush=True,
        )
        deadline = time.monotonic() + options.seconds
        while (left := deadline - time.monotonic()) > 0:
            if sys.stderr.isatty():
                print(f"\r{left:5.0f} s left ", end="", file=sys.stderr, flush=True)
            time.sleep(min(1.0, left))
        if sys.stderr.isatty():
            print(file=sys.stderr)
        snapshots = every_process(
            options,
            "/debug/memory/snapshot",
            {"run": run_id, "top": options.top, "group_by": options.group_by},
            tell_done=True,
        )
        report(snapshots)
    finally:
        if not options.keep:
            every_process(options, "/debug/memory/stop", {"run": run_id})
    return 0
