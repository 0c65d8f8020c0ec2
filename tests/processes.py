"""Run `python -m server ...` as a real child process, the way production runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent


class Process:
    """A `python -m server <command>` child whose output lines are kept for assertions."""

    def __init__(self, command: list[str], env: Mapping[str, str], *, cwd: Path = ROOT) -> None:
        full_env = {**os.environ, "APP_ENV": "test", "LOG_FORMAT": "json", **env}
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the child makes its own
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "server", *command],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


def wait_until_serving(port: int, process: Process, timeout: float = 60.0) -> None:
    """Poll the standard health service until the server says SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise AssertionError(
                    f"server exited with {process.popen.returncode}:\n{process.output}"
                )
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"server not SERVING after {timeout} s:\n{process.output}")


def pid_with_local_port(port: int) -> int | None:
    """The process holding a TCP socket whose local port is `port` (from /proc), if any."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    targets = {f"socket:[{inode}]" for inode in inodes if inode != "0"}
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    return int(pid)
        except OSError:
            continue
    return None
