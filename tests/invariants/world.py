"""Build rows through the legal paths, with raw SQL, as any client of the database would.

Every helper takes the path a correct service takes (the triggers check each step), so a test
can put a row in any state and then try to break a rule from there.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

_counter = itertools.count(1)
ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
TASK_STATES = (
    "OPEN",
    "ACCEPTED",
    "PROOF_SUBMITTED",
    "DISPUTED",
    "COMPLETED",
    "CANCELLED",
    "EXPIRED",
)


def hx_code(error: psycopg.Error) -> str:
    """The HX code a database error carries: its SQLSTATE, or the one in its constraint's name."""
    if error.sqlstate and error.sqlstate.startswith("HX"):
        return error.sqlstate
    name = error.diag.constraint_name or ""
    for part in name.split("_"):
        if part.startswith("hx") and part[2:].isdigit():
            return part.upper()
    return f"{type(error).__name__}:{error.sqlstate}"


def refused(world: World, code: str, query: str, *params: object) -> None:
    """The statement fails, and with this HX code."""
    with pytest.raises(psycopg.Error) as caught:
        world.rows(query, *params)
    assert hx_code(caught.value) == code, caught.value


class World:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    # --- raw SQL -------------------------------------------------------------------------
    def rows(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []

    def value(self, query: str, *params: object) -> Any:
        rows = self.rows(query, *params)
        return rows[0][0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    # --- people --------------------------------------------------------------------------
    def user(self, *, admin: bool = False, state: str | None = "CA", tier: int = 1) -> uuid.UUID:
        n = next(_counter)
        user_id: uuid.UUID = self.value(
            "INSERT INTO users (email, password_hash, full_name, is_admin, location_state, trust_tier)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            f"user{n}-{uuid.uuid4().hex[:6]}@example.com",
            ARGON,
            f"User {n}",
            admin,
            state,
            tier,
        )
        return user_id

    def admin(self) -> uuid.UUID:
        return self.user(admin=True)

    def profile(self, user: uuid.UUID) -> tuple[Any, ...]:
        return self.rows("SELECT * FROM recompute_capability(%s)", user)[0]

    def worker(
        self,
        *,
        state: str = "CA",
        tier: int = 1,
        trades: tuple[str, ...] = (),
        insurance: bool = False,
        background: bool = False,
    ) -> uuid.UUID:
        worker = self.user(state=state, tier=tier)
        admin = self.admin()
        for trade in trades:
            self.verification(worker, "TRADE_LICENSE", trade=trade, approve_by=admin)
        if insurance:
            self.verification(worker, "INSURANCE", approve_by=admin)
        if background:
            self.verification(worker, "BACKGROUND_CHECK", approve_by=admin)
        self.profile(worker)
        return worker

    # --- uploads and verifications --------------------------------------------------------
    def upload(
        self,
        owner: uuid.UUID,
        purpose: str = "PROOF_PHOTO",
        *,
        ready: bool = True,
        content_type: str = "image/jpeg",
    ) -> uuid.UUID:
        upload_id = uuid.uuid4()
        self.rows(
            "INSERT INTO uploads (id, owner_id, purpose, content_type, declared_size, object_key)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            upload_id,
            owner,
            purpose,
            content_type,
            1000,
            f"{purpose.lower()}/{owner}/{upload_id}",
        )
        if ready:
            self.rows("UPDATE uploads SET state = 'UPLOADED' WHERE id = %s", upload_id)
            self.rows(
                "UPDATE uploads SET state = 'READY', size_bytes = 900, sha256 = %s, width = 10, height = 10"
                " WHERE id = %s",
                hashlib.sha256(upload_id.bytes).digest(),
                upload_id,
            )
        return upload_id

    def verification(
        self,
        user: uuid.UUID,
        kind: str,
        *,
        trade: str | None = None,
        expires_in: str | None = "365 days",
        approve_by: uuid.UUID | None = None,
    ) -> uuid.UUID:
        doc = self.upload(user, "VERIFICATION_DOC")
        with self.transaction():
            record: uuid.UUID = self.value(
                "INSERT INTO verification_records (user_id, kind, trade, expires_at)"
                " VALUES (%s, %s, %s, now() + %s::interval) RETURNING id",
                user,
                kind,
                trade,
                expires_in,
            )
            self.rows("INSERT INTO verification_documents VALUES (%s, 1, %s)", record, doc)
        if approve_by is not None:
            self.rows(
                "UPDATE verification_records SET state = 'APPROVED', reviewed_by = %s WHERE id = %s",
                approve_by,
                record,
            )
        return record

    # --- tasks ---------------------------------------------------------------------------
    def task(
        self,
        poster: uuid.UUID | None = None,
        *,
        state: str = "CA",
        price: int = 2500,
        trade: str | None = None,
        tier: int = 1,
        insurance: bool = False,
        background: bool = False,
        requires_proof: bool = True,
        funded: bool = True,
        lat: float = 34.05,
        lng: float = -118.25,
        urgent: bool = False,
    ) -> uuid.UUID:
        poster = poster or self.user()
        with self.transaction():
            task_id: uuid.UUID = self.value(
                "INSERT INTO tasks (poster_id, title, category, price_cents, address, location_state, location,"
                " deadline, required_trade, required_trust_tier, insurance_required,"
                " background_check_required, requires_proof, urgent)"
                " VALUES (%s, 'Fix the sink', 'PLUMBING', %s, '1 Main St', %s,"
                " ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, now() + interval '2 days',"
                " %s, %s, %s, %s, %s, %s) RETURNING id",
                poster,
                price,
                state,
                lng,
                lat,
                trade,
                tier,
                insurance,
                background,
                requires_proof,
                urgent,
            )
            self.rows(
                "INSERT INTO escrows (task_id, amount_cents, currency) VALUES (%s, %s, 'USD')",
                task_id,
                price,
            )
        if funded:
            self.fund(task_id)
        return task_id

    def fund(self, task: uuid.UUID) -> None:
        self.rows(
            "UPDATE escrows SET state = 'FUNDED', payment_reference = 'pi_test' WHERE task_id = %s",
            task,
        )

    def task_state(self, task: uuid.UUID) -> str:
        return str(self.value("SELECT state FROM tasks WHERE id = %s", task))

    def escrow_state(self, task: uuid.UUID) -> str:
        return str(self.value("SELECT state FROM escrows WHERE task_id = %s", task))

    def worker_of(self, task: uuid.UUID) -> uuid.UUID:
        worker: uuid.UUID = self.value("SELECT worker_id FROM tasks WHERE id = %s", task)
        return worker

    def poster_of(self, task: uuid.UUID) -> uuid.UUID:
        poster: uuid.UUID = self.value("SELECT poster_id FROM tasks WHERE id = %s", task)
        return poster

    def accept(self, task: uuid.UUID, worker: uuid.UUID | None = None) -> uuid.UUID:
        worker = worker or self.worker()
        self.rows("UPDATE tasks SET state = 'ACCEPTED', worker_id = %s WHERE id = %s", worker, task)
        return worker

    def submit_proof(self, task: uuid.UUID, photos: int = 1) -> uuid.UUID:
        worker = self.worker_of(task)
        uploads = [self.upload(worker) for _ in range(photos)]
        with self.transaction():
            proof: uuid.UUID = self.value(
                "INSERT INTO proofs (task_id, worker_id, note) VALUES (%s, %s, 'done') RETURNING id",
                task,
                worker,
            )
            for position, upload in enumerate(uploads, start=1):
                self.rows("INSERT INTO proof_photos VALUES (%s, %s, %s)", proof, position, upload)
            self.rows("UPDATE tasks SET state = 'PROOF_SUBMITTED' WHERE id = %s", task)
        return proof

    def approve(self, task: uuid.UUID) -> None:
        with self.transaction():
            self.rows(
                "UPDATE proofs SET state = 'ACCEPTED' WHERE task_id = %s AND state = 'SUBMITTED'",
                task,
            )
            self.rows("UPDATE tasks SET state = 'COMPLETED' WHERE id = %s", task)
            self.rows("UPDATE escrows SET state = 'RELEASED' WHERE task_id = %s", task)

    def award_xp(self, task: uuid.UUID) -> tuple[Any, ...]:
        return self.rows(
            "INSERT INTO xp_ledger (user_id, task_id, escrow_id)"
            " SELECT t.worker_id, t.id, e.id FROM tasks t JOIN escrows e ON e.task_id = t.id WHERE t.id = %s"
            " RETURNING amount, xp_before, xp_after, level_before, level_after",
            task,
        )[0]

    def reject(self, task: uuid.UUID, reason: str = "blurry photos") -> None:
        with self.transaction():
            self.rows(
                "UPDATE proofs SET state = 'REJECTED', rejection_reason = %s WHERE task_id = %s AND state = 'SUBMITTED'",
                reason,
                task,
            )
            self.rows("UPDATE tasks SET state = 'ACCEPTED' WHERE id = %s", task)

    def dispute(self, task: uuid.UUID, by: uuid.UUID | None = None) -> uuid.UUID:
        by = by or self.poster_of(task)
        with self.transaction():
            dispute: uuid.UUID = self.value(
                "INSERT INTO disputes (task_id, opened_by, reason) VALUES (%s, %s, 'not done') RETURNING id",
                task,
                by,
            )
            self.rows("UPDATE tasks SET state = 'DISPUTED' WHERE id = %s", task)
            self.rows("UPDATE escrows SET state = 'LOCKED_DISPUTE' WHERE task_id = %s", task)
        return dispute

    def resolve(
        self, task: uuid.UUID, resolution: str, split_release_cents: int | None = None
    ) -> None:
        admin = self.admin()
        with self.transaction():
            self.rows(
                "UPDATE disputes SET state = 'RESOLVED', resolution = %s, resolved_by = %s, split_release_cents = %s"
                " WHERE task_id = %s AND state = 'OPEN'",
                resolution,
                admin,
                split_release_cents,
                task,
            )
            if resolution == "REFUND":
                self.rows(
                    "UPDATE proofs SET state = 'REJECTED', rejection_reason = 'refunded by dispute'"
                    " WHERE task_id = %s AND state = 'SUBMITTED'",
                    task,
                )
                self.rows("UPDATE tasks SET state = 'CANCELLED' WHERE id = %s", task)
                self.rows("UPDATE escrows SET state = 'REFUNDED' WHERE task_id = %s", task)
            else:
                self.rows(
                    "UPDATE proofs SET state = 'ACCEPTED' WHERE task_id = %s AND state = 'SUBMITTED'",
                    task,
                )
                self.rows("UPDATE tasks SET state = 'COMPLETED' WHERE id = %s", task)
                final = "RELEASED" if resolution == "RELEASE" else "REFUND_PARTIAL"
                self.rows("UPDATE escrows SET state = %s WHERE task_id = %s", final, task)

    def cancel(self, task: uuid.UUID) -> None:
        with self.transaction():
            self.rows(
                "UPDATE tasks SET state = 'CANCELLED', cancel_reason = 'changed my mind' WHERE id = %s",
                task,
            )
            if self.escrow_state(task) == "FUNDED":
                self.rows("UPDATE escrows SET state = 'REFUNDED' WHERE task_id = %s", task)

    def expire(self, task: uuid.UUID) -> None:
        # The poster moves the deadline (allowed while OPEN); the expiry job then finds it past.
        self.rows(
            "UPDATE tasks SET deadline = created_at + interval '1 millisecond' WHERE id = %s", task
        )
        with self.transaction():
            self.rows("UPDATE tasks SET state = 'EXPIRED' WHERE id = %s", task)
            if self.escrow_state(task) == "FUNDED":
                self.rows("UPDATE escrows SET state = 'REFUNDED' WHERE task_id = %s", task)

    def task_in(self, state: str) -> uuid.UUID:
        """A task brought to `state` by the legal path (COMPLETED via approval)."""
        task = self.task()
        if state == "OPEN":
            return task
        if state == "CANCELLED":
            self.cancel(task)
            return task
        if state == "EXPIRED":
            self.expire(task)
            return task
        self.accept(task)
        if state == "ACCEPTED":
            return task
        self.submit_proof(task)
        if state == "PROOF_SUBMITTED":
            return task
        if state == "COMPLETED":
            self.approve(task)
            return task
        self.dispute(task)
        assert state == "DISPUTED", state
        return task
