"""`python -m bench`: what `make bench` runs (see bench/runner.py and README "Benchmarks")."""

from __future__ import annotations

import argparse
import sys

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
        "--profile",
        action="store_true",
        help="also run the cached feed under py-spy (.bench/profile/)",
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
        profile=args.profile,
    )
    return main(plan)


if __name__ == "__main__":
    sys.exit(cli())
