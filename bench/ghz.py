"""Finding (or installing) ghz, running one of bench/ghz/*.json, and reading its JSON report."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = Path(__file__).resolve().parent / "ghz"
INSTALL = "github.com/bojand/ghz/cmd/ghz@latest"


def find_or_install() -> str:
    """The ghz binary: on PATH, or in Go's bin folder, or installed there with `go install`."""
    found = shutil.which("ghz")
    if found:
        return found
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise RuntimeError(
            f"ghz is not installed and Go is missing: install Go, then `go install {INSTALL}`"
        )
    gobin = subprocess.run([go, "env", "GOPATH"], capture_output=True, text=True, check=True)
    binary = Path(gobin.stdout.strip()) / "bin" / "ghz"
    if not binary.exists():
        logger.info(f"installing ghz: go install {INSTALL}")
        subprocess.run([go, "install", INSTALL], check=True)
    return str(binary)


@dataclass(frozen=True, slots=True)
class Result:
    count: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict[str, int]
    errors: dict[str, int]
    server_cpu_ms: float = float("nan")  # server CPU time per call (all its processes)
    ghz_cpu_ms: float = float("nan")  # ghz's own CPU time per call (it shares the cores)
    steal_pct: float = float("nan")  # CPU time the VM's host took back during the run
    db_cpu_ms: float = float("nan")  # PostgreSQL's CPU time per call (all its processes)

    @property
    def error_count(self) -> int:
        return sum(n for code, n in self.statuses.items() if code != "OK")

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> Result:
        latency = {
            int(p["percentage"]): p["latency"] / 1e6
            for p in report.get("latencyDistribution") or []
        }
        return cls(
            count=int(report["count"]),
            rps=float(report["rps"]),
            p50_ms=latency.get(50, float("nan")),
            p95_ms=latency.get(95, float("nan")),
            p99_ms=latency.get(99, float("nan")),
            statuses=dict(report.get("statusCodeDistribution") or {}),
            errors=dict(report.get("errorDistribution") or {}),
        )


def run(binary: str, config: str, host: str, output: Path, **overrides: str | int | None) -> Result:
    """Run bench/ghz/<config>.json against host with command-line overrides (e.g. duration="20s",
    rps=500, total=2000, metadata='{...}', data_file="bench/data/x.json"); keep the JSON report
    (without its per-request details) at `output`."""
    args = [binary, "--config", str(CONFIGS / f"{config}.json"), "--format", "json"]
    for name, value in overrides.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    args.append(host)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # ghz has been waited for: counted
    if done.returncode not in (0, 1) or not done.stdout.strip():  # 1: some calls failed
        raise RuntimeError(f"ghz {config} failed ({done.returncode}): {done.stderr.strip()}")
    report = json.loads(done.stdout)
    report.pop("details", None)
    options = report.get("options") or {}
    if isinstance(options.get("data"), list):  # a data file's every request (megabytes)
        options["data"] = f"{len(options['data'])} requests from the data file"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    result = Result.from_report(report)
    spent = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return (
        replace(result, ghz_cpu_ms=round(spent * 1000 / result.count, 3))
        if result.count
        else result
    )
