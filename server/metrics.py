"""Every Prometheus metric the server and its jobs expose, in one place.

The server runs several processes (SO_REUSEPORT), so prometheus-client runs in multiprocess
mode: `PROMETHEUS_MULTIPROC_DIR` must be set before this module is first imported (the
command line does it), and `/metrics` aggregates all processes' files (`render`).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Latency buckets for calls and queries: 1 ms ... 10 s.
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPC_STARTED = Counter(
    "grpc_server_started_total", "RPCs started on the server.", ["grpc_service", "grpc_method"]
)
RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by final status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
RPC_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time from receiving an RPC to its final status.",
    ["grpc_service", "grpc_method"],
    buckets=_LATENCY,
)
RPC_REFUSED_DRAINING = Counter(
    "grpc_server_refused_draining_total",
    "Calls answered UNAVAILABLE (with a retry delay) because the server was shutting down.",
)
RPC_UNDECODABLE = Counter(
    "grpc_server_undecodable_requests_total",
    "Calls refused because their bytes were not the method's request message (HX301).",
    ["grpc_service", "grpc_method"],
)

DB_QUERY_SECONDS = Histogram(
    "db_query_duration_seconds", "Time of each named SQL statement.", ["query"], buckets=_LATENCY
)
DB_SLOW_QUERIES = Counter(
    "db_slow_queries_total", "Named SQL statements slower than SLOW_QUERY_SECONDS.", ["query"]
)
DB_POOL_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Connections checked out of the pool.",
    multiprocess_mode="livesum",
)
DB_POOL_DISCARDED = Counter(
    "db_pool_connections_discarded_total",
    "Pooled connections found dead at checkout (after a database restart) and replaced.",
)
DB_POOL_WAITING = Gauge(
    "db_pool_requests_waiting",
    "Callers waiting for a pool connection.",
    multiprocess_mode="livesum",
)
DB_POOL_MAX = Gauge(
    "db_pool_connections_max",
    "The pools' size limit (DB_POOL_MAX_SIZE per open pool): saturation is in_use / max.",
    multiprocess_mode="livesum",
)

DEPENDENCY_UP = Gauge(
    "dependency_up",
    "1 when the last health check of the dependency passed, else 0 (lowest over processes).",
    ["dependency"],
    multiprocess_mode="livemin",
)


FEED_QUERY_SECONDS = Histogram(
    "feed_query_duration_seconds",
    "Time to read a feed page from the database.",
    ["mode"],
    buckets=_LATENCY,
)
FEED_CACHE = Counter(
    "feed_cache_requests_total", "Feed page lookups, by mode and hit or miss.", ["mode", "result"]
)
FEED_CARDS = Counter(
    "feed_cards_total",
    "Task cards of feed pages, found encoded in this process (hit) or read and encoded (miss).",
    ["result"],
)
FEED_INVALIDATIONS = Counter(
    "feed_cache_invalidations_total", "Feed cache invalidations, by cause.", ["reason"]
)

UPLOAD_REJECTIONS = Counter(
    "upload_rejections_total", "Uploads refused by their checks.", ["purpose"]
)
VERIFICATION_PROCESSING_SECONDS = Histogram(
    "verification_processing_duration_seconds",
    "Time to check and clean a verification document after its upload.",
    buckets=_LATENCY,
)
CAPABILITY_RECOMPUTE_SECONDS = Histogram(
    "capability_recompute_duration_seconds",
    "Time to derive a capability profile.",
    buckets=_LATENCY,
)
CAPABILITY_RECOMPUTE_FAILURES = Counter(
    "capability_recompute_failures_total",
    "Capability recomputes that failed (and will be retried).",
)

RATE_LIMITED = Counter("rate_limited_total", "Calls refused by the rate limiter.", ["group"])
RATE_LIMIT_FALLBACK = Counter(
    "rate_limiter_fallback_total",
    "Calls counted by a per-process budget because Redis was unreachable.",
    ["group"],
)

JOB_RUNS = Counter(
    "jobs_processed_total", "Jobs run by the worker, by actor and outcome.", ["actor", "outcome"]
)
JOB_RETRIES = Counter(
    "jobs_retries_total", "Job runs that were retries of a failed run.", ["actor"]
)
JOB_DEAD_LETTERED = Counter(
    "jobs_dead_lettered_total",
    "Jobs that failed every retry and went to the dead-letter queue.",
    ["actor"],
)
JOB_SECONDS = Histogram(
    "jobs_duration_seconds", "Time spent running a job.", ["actor"], buckets=_LATENCY
)
OUTBOX_BACKLOG = Gauge(
    "outbox_backlog", "Committed outbox rows not yet dispatched.", multiprocess_mode="livemax"
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "outbox_oldest_age_seconds",
    "Age of the oldest undispatched outbox row.",
    multiprocess_mode="livemax",
)
OUTBOX_UNFINISHED = Gauge(
    "outbox_unfinished",
    "Outbox rows sent to the broker whose job is not done yet (in flight, or waiting to retry).",
    multiprocess_mode="livemax",
)
OUTBOX_RESENT = Counter(
    "outbox_resent_total",
    "Outbox rows sent again because Redis had lost their messages (a flush, a restart), by actor.",
    ["actor"],
)
# "actor", not "job": Prometheus gives every target a `job` label (a scraped one would be
# renamed exported_job).
RELAY_DISPATCHED = Counter(
    "outbox_dispatched_total", "Outbox rows sent to the broker, by actor.", ["actor"]
)
RELAY_ERRORS = Counter(
    "outbox_relay_errors_total", "Relay batches the broker refused (e.g. Redis down)."
)
URGENT_SMS = Counter(
    "urgent_sms_total",
    "Urgent-task SMS decided by sms.urgent_fanout, by outcome (sent, or why dropped).",
    ["outcome"],
)
NOTIFICATIONS_PURGED = Counter(
    "notifications_purged_total", "In-app notifications deleted by notification.purge (30 days)."
)

# Long-running loops (the outbox relay, the health monitor) survive any outage of what they
# use; these say whether each is working or waiting one out, and how often a round failed.
LOOP_UP = Gauge(
    "background_loop_up",
    "1 while a long-running loop works, 0 while it waits out a failure (lowest over processes).",
    ["loop"],
    multiprocess_mode="livemin",
)
LOOP_FAILURES = Counter(
    "background_loop_failures_total",
    "Rounds of a long-running loop that failed, by what failed (database, redis, unexpected).",
    ["loop", "cause"],
)

# Watch streams (server/watch.py): server-streaming calls, kept out of grpc_server_handling_seconds
# (a stream's length is its client's choice, not latency).
WATCH_STREAMS = Gauge(
    "watch_streams_open",
    "Watch streams open now, by method.",
    ["method"],
    multiprocess_mode="livesum",
)
WATCH_EVENTS_SENT = Counter(
    "watch_events_sent_total", "Events sent on watch streams (heartbeats not counted).", ["method"]
)
WATCH_HEARTBEATS = Counter(
    "watch_heartbeats_total", "Heartbeats sent on watch streams (nothing new).", ["method"]
)
WATCH_RESYNCS = Counter(
    "watch_resyncs_total",
    "Watch streams refused or ended for a resync: a cursor older than the retention"
    " (cursor_expired) or a client that fell behind its queue (overflow).",
    ["method", "reason"],
)
WATCH_DISPATCH_SECONDS = Histogram(
    "watch_dispatch_duration_seconds",
    "Time for the hub to hand one event to every stream it concerns (eligibility included).",
    buckets=_LATENCY,
)

# Memory of each process (server/memory.py samples them every few seconds). "liveall": one
# series per process (a `pid` label), dropped when the process is marked dead.
PROCESS_RSS = Gauge(
    "process_rss_bytes",
    "Resident memory of the process (Linux /proc/self/statm).",
    ["role"],
    multiprocess_mode="liveall",
)
PROCESS_MALLOC = Gauge(
    "process_malloc_bytes",
    "Bytes in use from the C allocator (glibc mallinfo2): native libraries such as grpcio's"
    " core, and Python objects over 512 bytes.",
    ["role"],
    multiprocess_mode="liveall",
)
PYTHON_HEAP_BLOCKS = Gauge(
    "python_heap_allocated_blocks",
    "Memory blocks the Python allocator has handed out (sys.getallocatedblocks): it grows with"
    " the live Python objects.",
    ["role"],
    multiprocess_mode="liveall",
)
PYTHON_TRACED = Gauge(
    "python_traced_memory_bytes",
    "Python memory traced by tracemalloc while an operator has it on (/debug/memory); 0 when off.",
    ["role"],
    multiprocess_mode="liveall",
)


def render() -> tuple[bytes, str]:
    """The text exposition of every process's metrics, and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges (called by the supervisor when a child exits)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
