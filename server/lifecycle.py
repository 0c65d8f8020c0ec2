"""Child processes that do not outlive their parent.

`python -m server worker` and `serve` run trees of processes (Dramatiq's main process, its worker
and fork processes; the server's children). A parent stopped with SIGTERM stops its children
itself, but one killed outright (SIGKILL, the OOM killer) cannot, and its children would run on
as orphans: consuming jobs, holding ports. Each child therefore asks the kernel to send it
SIGTERM when its parent dies (Linux's PR_SET_PDEATHSIG), and stops gracefully on it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """SIGTERM this process when its parent dies. `parent`: the pid it should have (when the
    parent may already be gone by the time this runs, this process then stops at once)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # not fatal: the process just lacks the safety net
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)  # it died between our fork and the prctl
