"""The TypeScript client (clients/ts): its generated code is what the protos make now, it
compiles, and it works end to end against a real server and worker (node's own test runner)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.clients.conftest import Server
from tests.jobs_harness import Capture, job_env, start_worker

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "ts"
NODE = CLIENT / "node_modules" / ".bin" / "node"  # clients/ts's own Node (the `node` package)
TSC = CLIENT / "node_modules" / "typescript" / "bin" / "tsc"


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_generated_typescript_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "scripts/gen_ts.py", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    fresh, committed = tree(tmp_path / "src" / "gen"), tree(CLIENT / "src" / "gen")
    assert fresh, "gen_ts.py generated nothing"
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, f"clients/ts/src/gen is stale, run `make protos`: {stale}"


async def run(
    *command: str | Path, timeout: float, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run a command without blocking the event loop (the capture endpoint serves on it)."""
    child = await asyncio.create_subprocess_exec(
        *map(str, command),
        cwd=CLIENT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(child.communicate(), timeout)
    except TimeoutError:
        child.kill()
        out, _ = await child.communicate()
        return -1, f"timed out after {timeout} s\n{out.decode()}"
    assert child.returncode is not None
    return child.returncode, out.decode()


async def test_the_typescript_client_end_to_end(
    server_process: Server, database_url: str, redis_url: str, capture: Capture
) -> None:
    workers = start_worker(job_env(database_url, redis_url, capture.url))
    worker = next(workers)  # sign-up and the profile change queue the capability job
    try:
        code, built = await run(NODE, TSC, "-p", ".", timeout=120)
        assert code == 0, f"tsc failed:\n{built}"
        await server_process.start_serving()
        code, output = await run(
            NODE, "--test", "--test-reporter=spec", "build/test/**/*.test.js",
            timeout=180, env={"HUSTLE_ADDRESS": f"http://{server_process.address}"},
        )  # fmt: skip
        assert code == 0, (
            f"node --test failed ({code}):\n{output}\n{server_process.output()[-6000:]}\n"
            f"--- worker:\n{worker.process.output[-4000:]}"
        )
        # the spec reporter's summary: "\u2139 pass 7", "\u2139 fail 0"
        counts = dict(re.findall(r"^\u2139 (pass|fail) (\d+)$", output, re.MULTILINE))
        assert counts.get("fail") == "0", output
        assert int(counts.get("pass", 0)) >= 7, output
    finally:
        workers.close()
