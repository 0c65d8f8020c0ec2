"""Completion's rewards: the worker's streak, the XP award (computed by the ledger's trigger),
and the notifications that tell them — inside the completing transaction."""

from __future__ import annotations

from dataclasses import dataclass

from server.db import Rows, Session
from server.domain.notifications import notify
from server.domain.records import NotificationKind


@dataclass(frozen=True, slots=True)
class Award:
    amount: int
    xp_after: int
    level_before: int
    level_after: int


_AWARD = Rows("award_xp", Award)


async def reward(tx: Session, task_id: str, worker_id: str, title: str) -> int:
    """Award XP for a task whose escrow was just RELEASED; returns the XP earned."""
    await tx.execute("touch_streak", user_id=worker_id)
    award = await tx.one(_AWARD, task_id=task_id)
    assert award is not None
    await notify(
        tx,
        worker_id,
        NotificationKind.XP_EARNED,
        f"+{award.amount} XP",
        f"For “{title}”.",
        task_id=task_id,
        data={"xp": award.amount, "xp_total": award.xp_after},
    )
    if award.level_after > award.level_before:
        await notify(
            tx,
            worker_id,
            NotificationKind.LEVEL_UP,
            f"Level {award.level_after}!",
            "You reached a new level.",
            data={"level": award.level_after},
        )
    return award.amount
