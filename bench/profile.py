"""py-spy on every server process during a run: collapsed stacks plus a plain-text summary.

The stacks (`.bench/profile/<name>-<pid>.txt`, Brendan Gregg's collapsed format) open in
https://www.speedscope.app; the summary lists where the samples were, by own time and by total
time, across all processes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is missing: `make venv` installs it (dev dependencies)")
    return found


@contextmanager
def recording(
    pids: list[int], seconds: int, folder: Path, name: str, *, native: bool = False
) -> Iterator[None]:
    """Sample each pid (100 Hz, idle threads excluded) for `seconds` while the block runs."""
    folder.mkdir(parents=True, exist_ok=True)
    outputs = [folder / f"{name}-{pid}.txt" for pid in pids]
    # native frames (grpc's Cython core) need the process paused while sampled
    mode = ["--native"] if native else ["--nonblocking"]
    spies = [
        subprocess.Popen(
            [
                _py_spy(),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(seconds),
                "--rate",
                "100",
                "--format",
                "raw",
                "--output",
                str(out),
                *mode,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid, out in zip(pids, outputs, strict=True)
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.wait(timeout=seconds + 60)
    summary = summarize([o for o in outputs if o.exists()])
    (folder / f"{name}-summary.txt").write_text(summary, encoding="utf-8")


# Where a sample's stack passes, by area: the shares overlap (an interceptor's share includes
# the handler it wraps) and do not add up to 100 %.
AREAS = (
    ("the interceptor chain (and what it wraps)", "server/interceptors/"),
    ("the GetFeed handler", "GetFeed (server/api/"),
    ("feed pages: keyset, cache, the page query, cards", "server/api/feed_pages.py"),
    ("psycopg (statements and rows)", "psycopg/"),
    ("the Redis client (rate limits, feed cache)", "redis/"),
    ("rate limiting", "server/ratelimit.py"),
    ("session lookup", "server/sessions.py"),
    ("the access log", "server/logs.py"),
    ("gRPC's own threads", "Thread.run (threading.py"),
)


def summarize(files: list[Path], top: int = 25) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    samples = 0
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            samples += n
            for area, marker in AREAS:
                if marker in stack:
                    areas[area] += n
            frames = stack.split(";")
            own[_short(frames[-1])] += n
            for frame in {_short(f) for f in frames}:
                total[frame] += n
    if not samples:
        return f"no samples in {len(files)} file(s)\n"
    lines = [f"{samples} samples from {len(files)} process(es)", "", "by area (overlapping):"]
    lines += [f"{100 * areas[area] / samples:5.1f}%  {area}" for area, _ in AREAS]
    lines += ["", "own time:"]
    lines += [f"{100 * n / samples:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "total time (the frame or anything it called):"]
    lines += [f"{100 * n / samples:5.1f}%  {frame}" for frame, n in total.most_common(top)]
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    """'fn (/long/path/site-packages/pkg/mod.py:12)' -> 'fn (pkg/mod.py:12)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", f"{ROOT}/", "python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


if __name__ == "__main__":  # python -m bench.profile .bench/profile/feed_nearby-[0-9]*.txt
    print(summarize([Path(arg) for arg in sys.argv[1:]]), end="")
