"""Memory of each process: continuous gauges, and tracemalloc on demand.

Continuous: `start_sampler(role)` starts one daemon thread per process that sets
`process_rss_bytes`, `process_malloc_bytes`, `python_heap_allocated_blocks` and
`python_traced_memory_bytes` every few seconds (multiprocess "liveall" gauges: one series per
pid). An alert watches the RSS slope (ops/prometheus/rules/hustle.yml, HustleMemoryGrowing).

On demand: `PROFILER` (one per process) starts tracemalloc, keeps a baseline snapshot and
answers "what grew since" by source line (or file, or traceback). The HTTP port exposes it
behind ADMIN_HTTP_TOKEN (server/http.py, /debug/memory/...) and `python -m server memory`
drives it against every process of a running server. tracemalloc sees only memory allocated
through Python's allocators: grpcio's C core, OpenSSL and other native code are invisible to it
(`process_malloc_bytes` and RSS still show them; `memray` attributes them, see the runbook
section of docs/ARCHITECTURE.md "Memory").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from server import metrics

SAMPLE_SECONDS = 5.0
GroupBy = Literal["lineno", "filename", "traceback"]
GROUP_BY: tuple[GroupBy, ...] = ("lineno", "filename", "traceback")
MAX_FRAMES = 64
MAX_TOP = 500

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """Resident memory now (Linux); None where /proc is not there."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


_MALLINFO2_FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2_FIELDS.split()]


def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def _mallinfo2() -> Any:
    try:
        function = _LIBC.mallinfo2  # glibc 2.33+
    except AttributeError:
        return None
    function.restype = _MallInfo2
    function.argtypes = []
    return function


_MALLINFO2 = _mallinfo2()


M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter
LARGE_ALLOCATION = 128 * 1024


def keep_large_allocations_out_of_the_heap() -> bool:
    """Fix glibc's mmap threshold at its default (128 KiB), so that large blocks are always
    mapped, and unmapped when freed. Left dynamic, glibc raises the threshold to the size of the
    first large block freed: argon2id's 19 MiB working memory then comes from each thread's heap
    and stays there, and a server whose executor threads verify passwords held ~110 MiB more per
    process after a sign-in burst (measured with `make bench`, bench/results). False where there
    is no glibc."""
    if _LIBC is None or not hasattr(_LIBC, "mallopt"):
        return False
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, LARGE_ALLOCATION))


def malloc_bytes() -> int | None:
    """Bytes in use from glibc's malloc (small chunks plus mmapped ones); None elsewhere."""
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    return int(info.uordblks + info.hblkhd)


def sample(role: str) -> None:
    """Set this process's memory gauges once."""
    rss = rss_bytes()
    if rss is not None:
        metrics.PROCESS_RSS.labels(role).set(rss)
    native = malloc_bytes()
    if native is not None:
        metrics.PROCESS_MALLOC.labels(role).set(native)
    metrics.PYTHON_HEAP_BLOCKS.labels(role).set(sys.getallocatedblocks())
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    metrics.PYTHON_TRACED.labels(role).set(traced)


_sampler_lock = threading.Lock()
_sampler: tuple[int, threading.Thread, threading.Event] | None = None  # (pid, thread, stop)


def start_sampler(role: str, interval: float = SAMPLE_SECONDS) -> None:
    """Sample this process's memory now and then every `interval` s (once per process)."""
    global _sampler
    with _sampler_lock:
        if _sampler is not None and _sampler[0] == os.getpid():
            return
        sample(role)
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                sample(role)

        thread = threading.Thread(target=loop, name="memory-sampler", daemon=True)
        thread.start()
        _sampler = (os.getpid(), thread, stop)


def stop_sampler() -> None:
    """Stop sampling (before a process marks its own gauges dead on the way out)."""
    global _sampler
    with _sampler_lock:
        if _sampler is None or _sampler[0] != os.getpid():
            return
        _, thread, stop = _sampler
        stop.set()
        thread.join(timeout=5)
        _sampler = None


def live_pids() -> list[int]:
    """The processes of this tree that keep memory gauges (from the multiprocess folder's
    "liveall" files, which the supervisor removes when a child ends): the processes an
    operator can reach through the shared port. Just this one without that folder."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    pids = {os.getpid()}
    if folder:
        for path in Path(folder).glob("gauge_liveall_*.db"):
            match = re.fullmatch(r"gauge_liveall_(\d+)\.db", path.name)
            if match:
                pids.add(int(match.group(1)))
    return sorted(pids)


class ProfilerError(Exception):
    """A request the profiler refuses; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# tracemalloc's own bookkeeping and the import system are noise in a leak report.
_FILTERS = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)
_ROOT = str(Path(__file__).resolve().parent.parent) + os.sep


def _short(filename: str) -> str:
    """A path an operator reads: relative to the project or to site-packages."""
    if filename.startswith(_ROOT):
        return filename[len(_ROOT) :]
    marker = f"site-packages{os.sep}"
    index = filename.rfind(marker)
    return filename[index + len(marker) :] if index >= 0 else filename


@dataclass
class _Run:
    run_id: str
    frames: int
    started_at: float  # monotonic
    started_rss: int | None
    baseline: tracemalloc.Snapshot
    last: tracemalloc.Snapshot
    started_tracing: bool  # False when tracemalloc was already on (PYTHONTRACEMALLOC)


class MemoryProfiler:
    """tracemalloc for one process, driven by one operator's run at a time (a run id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run: _Run | None = None

    def status(self) -> dict[str, Any]:
        run = self._run
        current, peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
        return {
            "pid": os.getpid(),
            "peers": live_pids(),
            "tracing": tracemalloc.is_tracing(),
            "run": run.run_id if run else None,
            "frames": run.frames if run else None,
            "seconds": round(time.monotonic() - run.started_at, 3) if run else None,
            "traced_bytes": current,
            "traced_peak_bytes": peak,
            "rss_bytes": rss_bytes(),
            "malloc_bytes": malloc_bytes(),
        }

    def start(self, run_id: str, frames: int) -> dict[str, Any]:
        """Trace allocations from now on and keep a baseline; the same run again is a no-op."""
        with self._lock:
            if self._run is not None:
                if self._run.run_id == run_id:
                    return {**self.status(), "started": False}
                raise ProfilerError(
                    409, f"another run ({self._run.run_id}) is tracing this process; stop it first"
                )
            started_tracing = not tracemalloc.is_tracing()
            if started_tracing:
                tracemalloc.start(frames)
            baseline = tracemalloc.take_snapshot().filter_traces(_FILTERS)
            self._run = _Run(
                run_id=run_id,
                frames=tracemalloc.get_traceback_limit(),
                started_at=time.monotonic(),
                started_rss=rss_bytes(),
                baseline=baseline,
                last=baseline,
                started_tracing=started_tracing,
            )
        return {**self.status(), "started": True}

    def _current(self, run_id: str) -> _Run:
        run = self._run
        if run is None:
            raise ProfilerError(409, "tracemalloc is not started in this process (start first)")
        if run.run_id != run_id:
            raise ProfilerError(409, f"this process is traced by another run ({run.run_id})")
        return run

    def snapshot(
        self, run_id: str, *, top: int, group_by: GroupBy, since: Literal["start", "last"]
    ) -> dict[str, Any]:
        """The allocations that grew most since the baseline (or the previous snapshot)."""
        with self._lock:
            run = self._current(run_id)
            now = tracemalloc.take_snapshot().filter_traces(_FILTERS)
            against = run.baseline if since == "start" else run.last
            run.last = now
            stats = now.compare_to(against, group_by)
        growth = [s for s in stats if s.size_diff > 0 or s.count_diff > 0]
        growth.sort(key=lambda s: (s.size_diff, s.count_diff), reverse=True)
        entries = []
        for stat in growth[:top]:
            frame = stat.traceback[0]
            where = (
                _short(frame.filename)
                if group_by == "filename"
                else f"{_short(frame.filename)}:{frame.lineno}"
            )
            entry: dict[str, Any] = {
                "where": where,
                "size_diff_bytes": stat.size_diff,
                "size_bytes": stat.size,
                "count_diff": stat.count_diff,
                "count": stat.count,
            }
            if group_by == "traceback":
                entry["traceback"] = [f"{_short(f.filename)}:{f.lineno}" for f in stat.traceback]
            entries.append(entry)
        rss = rss_bytes()
        return {
            **self.status(),
            "since": since,
            "group_by": group_by,
            "grown_total_bytes": sum(s.size_diff for s in stats),
            "rss_growth_bytes": (
                rss - run.started_rss if rss is not None and run.started_rss is not None else None
            ),
            "top": entries,
        }

    def stop(self, run_id: str) -> dict[str, Any]:
        """Stop tracing (unless it was on before the run) and forget the snapshots."""
        with self._lock:
            run = self._run
            if run is None:
                return {**self.status(), "stopped": False}
            self._current(run_id)
            self._run = None
            if run.started_tracing:
                tracemalloc.stop()
        return {**self.status(), "stopped": True}


PROFILER = MemoryProfiler()
