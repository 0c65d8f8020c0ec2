"""Password hashing in threads leaves no heap behind once glibc's mmap threshold is fixed
(server.memory.keep_large_allocations_out_of_the_heap, called by every server process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys, threading
from server import memory, security
if sys.argv[1] == "fixed":
    assert memory.keep_large_allocations_out_of_the_heap()
security.hash_password_blocking("warm up the module once")
before = memory.rss_bytes()
def hashes():
    for _ in range(3):
        security.hash_password_blocking("correct horse battery staple")
threads = [threading.Thread(target=hashes) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
print((memory.rss_bytes() - before) // 2**20)
"""


def grown_mib(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def test_hashing_threads_keep_no_memory_with_the_threshold_fixed() -> None:
    fixed, dynamic = grown_mib("fixed"), grown_mib("dynamic")
    assert fixed < 20, f"grew {fixed} MiB with the threshold fixed"
    assert dynamic > fixed + 30, f"the check does not bite here: {dynamic} vs {fixed} MiB"
