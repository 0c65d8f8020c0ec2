"""Starting the server under test (or the echo ceiling) as `make run` would, and measuring it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 120.0
READY_LINE = "serving "
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # the supervisor logs it once every process serves


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of the machine so far: steal is time a VM's host ran others."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    steal = fields[7] if len(fields) > 7 else 0
    return steal, sum(fields[:8])  # guest time is already counted in user time


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    grpc_port: int
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def pids(self) -> list[int]:
        """The supervisor and every process under it."""
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    queue += [int(c) for c in (task / "children").read_text().split()]
                except OSError:
                    continue
        return found

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the supervisor and its processes."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        return total / CLOCK_TICKS

    def rss_by_process(self) -> dict[str, float]:
        """Resident memory of the supervisor and of each server process, in MiB."""
        found: dict[str, float] = {}
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            kib = next((int(line.split()[1]) for line in status.splitlines()
                        if line.startswith("VmRSS:")), 0)  # fmt: skip
            name = "supervisor" if pid == self.process.pid else f"process {pid}"
            found[name] = round(kib / 1024, 1)
        return found

    def rss_mib(self) -> float:
        """Resident memory of the supervisor and its server processes together, in MiB."""
        total_kib = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        return total_kib / 1024


@contextmanager
def start(
    module: str, args: list[str], env: Mapping[str, str], log: Path, *, root: Path = ROOT
) -> Iterator[Running]:
    """Run `python -m <module> <args>` with `env` in the checkout `root` until the block ends,
    then SIGTERM (drain)."""
    grpc_port, http_port = free_port(), free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {
        **env,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(grpc_port),
        "HTTP_PORT": str(http_port),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=root,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(process, grpc_port, log)
    try:
        _wait_ready(running)
        yield running
    finally:
        _stop(process)


def _wait_ready(running: Running) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if READY_LINE in running.log.read_text(errors="replace"):
            return
        if running.process.poll() is not None:
            break
        time.sleep(0.2)
    tail = "\n".join(running.log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"the server did not start; the end of {running.log}:\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
