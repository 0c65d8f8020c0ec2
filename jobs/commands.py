"""The jobs' commands: the worker (with the outbox relay), the scheduler, dead letters."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from server.commands import metrics_dir
from server.config import Settings
from server.lifecycle import die_with_parent


def worker(settings: Settings, args: argparse.Namespace) -> int:
    """Dramatiq's workers plus the outbox relay (a Dramatiq fork process), and /metrics.

    Dramatiq runs in a session of its own and gets each stop signal exactly once: process
    managers such as honcho signal a whole process group, and Dramatiq's workers would otherwise
    get it twice (directly and forwarded) and take the second as "kill now", dropping in-flight
    jobs. Dramatiq stops its workers gracefully within SHUTDOWN_GRACE_SECONDS. If this process
    is killed outright (SIGKILL), the kernel sends Dramatiq SIGTERM (server/lifecycle.py), so no
    orphan keeps consuming jobs.
    """
    metrics_dir(settings, "worker")
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "jobs.registry",
        "--processes",
        str(args.processes or settings.worker_processes),
        "--threads",
        str(args.threads or settings.worker_threads),
        "--worker-shutdown-timeout",
        str(int(settings.shutdown_grace_seconds * 1000)),
        "--fork-function",
        "jobs.registry:relay_process",
        "--skip-logging",
    ]
    me = os.getpid()
    child = subprocess.Popen(  # noqa: S603 - our own argv
        command,
        start_new_session=True,
        # Dramatiq stops (gracefully) if this process is killed outright; its own children do
        # the same for it (jobs.runtime, jobs.registry). Set before any thread starts here.
        preexec_fn=lambda: die_with_parent(me),
    )
    _serve_worker_metrics(settings)
    forwarded = False

    def forward(_signum: int, _frame: object) -> None:
        nonlocal forwarded
        if not forwarded:
            forwarded = True
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return child.wait()


def _serve_worker_metrics(settings: Settings) -> None:
    """/metrics of every worker process, the relay, and the dead-letter queues' sizes."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    from jobs import dead_letters
    from jobs.registry import broker

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(dead_letters.DeadLetterCollector(broker))
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, registry=registry)


def scheduler(settings: Settings, _: argparse.Namespace) -> int:
    """periodiq, sending the periodic jobs; restarted after a broker outage instead of exiting."""
    import redis.exceptions
    from loguru import logger
    from periodiq import main as periodiq_main
    from periodiq import make_argument_parser

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    args = make_argument_parser().parse_args(["jobs.registry"])
    backoff = 1.0
    while True:
        try:
            return int(periodiq_main(args) or 0)
        except redis.exceptions.RedisError as exc:
            logger.bind(error=str(exc), retry_in_s=backoff).warning(
                "scheduler lost the broker; restarting"
            )
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)


def dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    from jobs import dead_letters
    from jobs.registry import broker

    if args.redrive:
        ids = set(args.message_ids) if args.message_ids else None
        moved = dead_letters.redrive(broker, args.queue, ids)
        print(f"sent {moved} message(s) back to their queue")
        return 0
    found = dead_letters.list_dead(broker, args.queue)
    for dead in found:
        print(
            f"{dead.died_at:%Y-%m-%d %H:%M:%S}  {dead.queue:<14} {dead.actor:<22}"
            f" {dead.message_id}  retries={dead.retries} outbox_id={dead.outbox_id}"
        )
    if not found:
        print("no dead-lettered jobs")
    return 0
