"""`python -m bench`: what `make bench` runs (see bench/runner.py and README "Benchmarks")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.runner import Plan, main


def _sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.replace(",", " ").split()]
    if not sizes or min(sizes) < 1_000:
        raise argparse.ArgumentTypeError(
            "task counts of at least 1000, e.g. '100000' or '10000 1000000'"
        )
    return sorted(set(sizes))


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--tasks",
        type=_sizes,
        default=[100_000],
        help="seeded task counts, e.g. '10000 1000000' (default 100000)",
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds per warm-up")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--sustained-seconds", type=int, default=60)
    parser.add_argument(
        "--sustained-rps",
        type=int,
        default=0,
        help="the sustained feed's rate (default: half the cached maximum)",
    )
    parser.add_argument(
        "--soak-seconds",
        type=int,
        default=600,
        help="the mixed-traffic soak's length, RSS slope per process (0: no soak)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run the cached feed under py-spy (.bench/profile/)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="run only these scenarios, comma-separated (echo, feed_normal_cold, feed_normal, "
        "feed_normal_half, feed_nearby_light, feed_nearby, db_ceiling, get_task, create_task, "
        "accept_task, sign_in, feed_sustained, soak, watch)",
    )
    parser.add_argument(
        "--watch-streams", type=int, default=2000, help="the watch scenario's streams"
    )
    parser.add_argument("--watch-seconds", type=int, default=30, help="and its length")
    parser.add_argument(
        "--server-root",
        type=Path,
        help="serve the code of another checkout (e.g. a worktree of the commit before a "
        "change), measured by this bench; results go to bench/results/<date>-<commit>/",
    )
    args = parser.parse_args(argv)
    plan = Plan(
        sizes=args.tasks,
        duration=args.duration,
        warmup=args.warmup,
        concurrency=args.concurrency,
        connections=args.connections,
        sustained_seconds=args.sustained_seconds,
        sustained_rps=args.sustained_rps,
        soak_seconds=args.soak_seconds,
        watch_streams=args.watch_streams,
        watch_seconds=args.watch_seconds,
        profile=args.profile,
        only=frozenset(s.strip() for s in args.only.split(",") if s.strip()),
        server_root=args.server_root.resolve() if args.server_root else None,
    )
    return main(plan)


if __name__ == "__main__":
    sys.exit(cli())
