"""Completion's rewards: the worker's streak, the XP award (computed by the ledger's trigger),
and the notifications that tell them — inside the completing transaction."""

from __future__ import annotations

from typing import Any

from server.db import Session
from server.domain.notifications import notify


async def reward(tx: Session, task: dict[str, Any]) -> int:
    """Award XP for a task whose escrow was just RELEASED; returns the XP earned."""
    worker = task["worker_id"]
    await tx.execute("touch_streak", user_id=worker)
    award = await tx.one("award_xp", task_id=task["id"])
    assert award is not None
    await notify(
        tx,
        worker,
        "XP_EARNED",
        f"+{award['amount']} XP",
        f"For “{task['title']}”.",
        task_id=task["id"],
        data={"xp": award["amount"], "xp_total": award["xp_after"]},
    )
    if award["level_after"] > award["level_before"]:
        await notify(
            tx,
            worker,
            "LEVEL_UP",
            f"Level {award['level_after']}!",
            "You reached a new level.",
            data={"level": award["level_after"]},
        )
    amount: int = award["amount"]
    return amount
