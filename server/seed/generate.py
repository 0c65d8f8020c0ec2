"""Deterministic rows for seeding: the same seed and `now` give the same data, row for row.

Every row is built to satisfy the database's rules by construction (the loader copies most
tables with triggers off for speed, then audits them): tasks and escrows agree, proofs have 1-3
photos that are the worker's READY uploads, workers hold what their tasks require, and so on.
Rows are tuples in the column order of `server.seed.tables`.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from server.seed.catalog import (
    CATEGORIES,
    FIRST_NAMES,
    LAST_NAMES,
    POSTER_LINES,
    STREET_SUFFIXES,
    STREETS,
    TASK_STATE_SHARES,
    TRADES,
    TRUST_TIER_SHARES,
    WORKER_LINES,
    Category,
    Metro,
)
from server.seed.ratings import RatingSeeder

Row = tuple[Any, ...]
SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


@dataclass(slots=True)
class SeedUser:
    id: str
    metro: Metro
    tier: int
    trades: set[str] = field(default_factory=set)
    insured: bool = False
    background: bool = False
    id_verified: bool = False


@dataclass
class TaskBatch:
    tasks: list[Row] = field(default_factory=list)
    escrows: list[Row] = field(default_factory=list)
    uploads: list[Row] = field(default_factory=list)
    proofs: list[Row] = field(default_factory=list)
    photos: list[Row] = field(default_factory=list)
    disputes: list[Row] = field(default_factory=list)
    messages: list[Row] = field(default_factory=list)
    ratings: list[Row] = field(default_factory=list)
    rating_windows: list[Row] = field(default_factory=list)


@dataclass(slots=True)
class Timeline:
    """When each step of one task's life happened (None: it did not)."""

    created: datetime
    deadline: datetime
    funded: datetime | None = None
    accepted: datetime | None = None
    submitted: datetime | None = None
    disputed: datetime | None = None
    completed: datetime | None = None
    cancelled: datetime | None = None
    expired: datetime | None = None

    @property
    def last(self) -> datetime:
        steps = (self.funded, self.accepted, self.submitted, self.disputed, self.completed,
                 self.cancelled, self.expired)  # fmt: skip
        return max([self.created, *(t for t in steps if t)])


class Generator:
    def __init__(
        self, seed: int, metros: tuple[Metro, ...], now: datetime, password_hash: str
    ) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
        # messages draw from a stream of their own, so that they change no other table's rows
        self.message_rng = random.Random(seed * 7919 + 1)  # noqa: S311
        self.metros = metros
        self.now = now
        self.password_hash = password_hash
        self._metro_weights = list(accumulate(m.weight for m in metros))
        self.users: list[SeedUser] = []
        self.admins: list[str] = []
        self._by_metro: dict[str, list[SeedUser]] = defaultdict(list)
        # workers by (metro, trade they hold); trade None: everyone in the metro
        self._workers: dict[tuple[str, str | None], list[SeedUser]] = defaultdict(list)
        # ratings and tier histories draw from their own generator (the rest stays as it was)
        self.extra = RatingSeeder(seed, now)
        self.trust_ledger: list[Row] = []

    # --- primitives ----------------------------------------------------------------------------
    def uuid(self) -> str:
        """A random version-4 UUID in its text form, which is all COPY needs."""
        bits = self.rng.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62) | (0x4 << 76) | (0x2 << 62)
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def pick_metro(self) -> Metro:
        x = self.rng.random() * self._metro_weights[-1]
        return self.metros[bisect(self._metro_weights, x)]

    def shares(self, table: tuple[tuple[Any, float], ...]) -> Any:
        x, total = self.rng.random(), 0.0
        for value, share in table:
            total += share
            if x < total:
                return value
        return table[-1][0]

    def point(self, metro: Metro) -> tuple[float, float]:
        """A uniformly random point within the metro's radius: (lat, lng)."""
        distance = metro.radius_km * math.sqrt(self.rng.random())
        bearing = self.rng.random() * 2 * math.pi
        lat = metro.lat + distance * math.cos(bearing) / 111.32
        lng = metro.lng + distance * math.sin(bearing) / (
            111.32 * math.cos(math.radians(metro.lat))
        )
        return lat, lng

    def ago(self, low: timedelta, high: timedelta) -> datetime:
        return self.now - (low + (high - low) * self.rng.random())

    def after(self, start: datetime, low: timedelta, high: timedelta) -> datetime:
        """A moment between low and high after start, but never in the future."""
        return min(start + low + (high - low) * self.rng.random(), self.now)

    # --- users and their verifications ---------------------------------------------------------
    def make_users(self, count: int) -> list[Row]:
        rows: list[Row] = []
        admins = max(1, count // 5000)
        for i in range(count):
            metro = self.pick_metro()
            user = SeedUser(self.uuid(), metro, self.shares(TRUST_TIER_SHARES))
            created = self.ago(30 * DAY, 720 * DAY)
            phone = f"+1{self.rng.randint(201, 989)}{self.rng.randint(2_000_000, 9_999_999)}"
            # a tier above ROOKIE has a verified phone (and an approved ID, below): its rules
            phone_verified = (
                created + 9 * MINUTE if self.rng.random() < 0.7 or user.tier >= 2 else None
            )
            self.trust_ledger.extend(self.extra.tier_history(user.id, user.tier, created))
            name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
            mode = "POSTER" if self.rng.random() < 0.35 else "WORKER"
            rows.append((user.id, f"seed{i}@hustle.test", created + 5 * MINUTE,
                         self.password_hash, name, phone, phone_verified, mode, i < admins,
                         user.tier, metro.state, created, created))  # fmt: skip
            self.users.append(user)
            self._by_metro[metro.name].append(user)
            if i < admins:
                self.admins.append(user.id)
        return rows

    def make_message_settings(self) -> list[Row]:
        """About one user in twelve keeps read receipts off (the rest have no row: on)."""
        rng = self.message_rng
        return [(u.id, False) for u in self.users if rng.random() < 1 / 12]

    def _credentials_wanted(self) -> list[tuple[str, str | None]]:
        wanted: list[tuple[str, str | None]] = []
        if self.rng.random() < 0.35:
            for trade in self.rng.sample(TRADES, self.rng.randint(1, 2)):
                wanted.append(("TRADE_LICENSE", trade))
        for kind, share in (("INSURANCE", 0.25), ("BACKGROUND_CHECK", 0.20), ("ID", 0.30)):
            if self.rng.random() < share:
                wanted.append((kind, None))
        return wanted

    def make_verifications(self) -> tuple[list[Row], list[Row], list[Row]]:
        """(uploads, verification_records, verification_documents) for every user."""
        uploads: list[Row] = []
        records: list[Row] = []
        documents: list[Row] = []
        outcomes = (("APPROVED", 0.82), ("PENDING", 0.06), ("REJECTED", 0.07), ("EXPIRED", 0.05))
        for user in self.users:
            for kind, trade in self._credentials_wanted():
                record_id = self.uuid()
                submitted = self.ago(2 * DAY, 400 * DAY)
                state = self.shares(outcomes)
                reviewer = self.rng.choice(self.admins) if state != "PENDING" else None
                if reviewer == user.id:  # nobody reviews their own: it stays pending
                    state, reviewer = "PENDING", None
                reviewed = submitted + self.rng.randint(2, 72) * HOUR if reviewer else None
                expires: datetime | None = None
                if state == "EXPIRED":
                    expires = self.ago(DAY, 60 * DAY)
                    if expires <= (reviewed or submitted):
                        state = "APPROVED"  # too recent to have expired already
                        expires = self.now + 365 * DAY
                elif kind != "ID":
                    expires = self.now + self.rng.randint(30, 3 * 365) * DAY
                reason = "The document is unreadable." if state == "REJECTED" else None
                records.append((record_id, user.id, kind, trade, state, expires, submitted,
                                reviewed, reviewer, reason,
                                expires if state == "EXPIRED" else None))  # fmt: skip
                upload = self.upload_row(user.id, "VERIFICATION_DOC", submitted - 3 * MINUTE,
                                         prefix="verification")  # fmt: skip
                uploads.append(upload)
                documents.append((record_id, 1, upload[0]))
                if state == "APPROVED":
                    user.id_verified |= kind == "ID" and (expires is None or expires > self.now)
                    if trade:
                        user.trades.add(trade)
                    user.insured |= kind == "INSURANCE"
                    user.background |= kind == "BACKGROUND_CHECK"
        for user in self.users:
            if user.tier >= 2 and not user.id_verified:
                record_id, doc = self.extra.uuid(), self.extra.uuid()
                submitted = self.now - self.extra.rng.randint(10, 300) * DAY
                reviewer = next((a for a in self.admins if a != user.id), None)
                if reviewer is None:
                    continue
                records.append((record_id, user.id, "ID", None, "APPROVED", None, submitted,
                                submitted + 5 * HOUR, reviewer, None, None))  # fmt: skip
                key, sent = f"verification/{user.id}/{doc}", submitted - 3 * MINUTE
                uploads.append((doc, user.id, "VERIFICATION_DOC", "application/pdf", 901_024,
                                key, "READY", 900_000, hashlib.sha256(doc.encode()).digest(),
                                None, None, None, sent, sent + MINUTE, sent + MINUTE))  # fmt: skip
                documents.append((record_id, 1, doc))
                user.id_verified = True
        for user in self.users:
            self._workers[(user.metro.name, None)].append(user)
            for trade in user.trades:
                self._workers[(user.metro.name, trade)].append(user)
        return uploads, records, documents

    def upload_row(self, owner: str, purpose: str, created: datetime, *, prefix: str) -> Row:
        upload_id = self.uuid()
        pdf = purpose == "VERIFICATION_DOC"
        size = self.rng.randint(200_000, 4_000_000)
        key = f"{prefix}/{owner}/{upload_id}"
        return (upload_id, owner, purpose, "application/pdf" if pdf else "image/jpeg", size + 1024,
                key, "READY", size, hashlib.sha256(upload_id.encode()).digest(),
                None if pdf else 3024, None if pdf else 4032, None if pdf else f"{key}.thumb.jpg",
                created, created + 20 * SECOND, created + 25 * SECOND)  # fmt: skip

    # --- tasks ---------------------------------------------------------------------------------
    def pick_worker(self, poster: SeedUser, metro: Metro, trade: str | None, tier: int,
                    insurance: bool, background: bool) -> SeedUser | None:  # fmt: skip
        """A local worker who meets the task's requirements (None when a few tries find none)."""
        candidates = self._workers.get((metro.name, trade))
        for _ in range(8):
            if not candidates:
                return None
            worker = self.rng.choice(candidates)
            if (worker is not poster and worker.tier >= tier and (worker.insured or not insurance)
                    and (worker.background or not background)):  # fmt: skip
                return worker
        return None

    def tasks(self, count: int, batch_size: int) -> Iterator[TaskBatch]:
        batch = TaskBatch()
        for _ in range(count):
            self._task(batch)
            if len(batch.tasks) >= batch_size:
                yield batch
                batch = TaskBatch()
        if batch.tasks:
            yield batch

    def _timeline(self, state: str, urgent: bool, funded: bool, has_worker: bool) -> Timeline:
        """Open and urgent work is recent; finished work spreads over the past six months."""
        rng = self.rng
        if state == "OPEN":
            created = self.ago(timedelta(0), 3 * HOUR if urgent else 10 * DAY)
            deadline = max(created + rng.randint(3, 21) * DAY, self.now + 6 * HOUR)
        elif state in ("ACCEPTED", "PROOF_SUBMITTED", "DISPUTED"):
            created = self.ago(DAY, 14 * DAY)
            deadline = self.now + rng.randint(1, 10) * DAY
        else:
            created = self.ago(3 * DAY, 180 * DAY)
            deadline = created + rng.randint(1, 14) * DAY
            if state == "EXPIRED":
                deadline = min(deadline, self.now - HOUR)
        t = Timeline(created, deadline)
        if funded:
            t.funded = created + rng.randint(1, 90) * MINUTE
        if has_worker:
            t.accepted = self.after(t.funded or created, timedelta(minutes=5), 2 * DAY)
            if state in ("PROOF_SUBMITTED", "DISPUTED", "COMPLETED"):
                t.submitted = self.after(t.accepted, HOUR, 3 * DAY)
            if state == "DISPUTED" and t.submitted:
                t.disputed = self.after(t.submitted, timedelta(minutes=30), DAY)
            if state == "COMPLETED" and t.submitted:
                t.completed = self.after(t.submitted, timedelta(minutes=10), 2 * DAY)
        if state == "CANCELLED":
            t.cancelled = self.after(
                t.accepted or t.funded or created, timedelta(minutes=10), 3 * DAY
            )
        if state == "EXPIRED":
            t.expired = deadline + rng.randint(1, 59) * MINUTE
        return t

    def _task(self, out: TaskBatch) -> None:
        rng = self.rng
        metro = self.pick_metro()
        if not self._by_metro.get(metro.name):
            metro = self.users[0].metro  # few users: not every metro has one
        poster = rng.choice(self._by_metro[metro.name])
        category: Category = rng.choice(CATEGORIES)
        trade = category.trade if category.trade and rng.random() < category.trade_share else None
        tier = self.shares(((1, 0.8), (2, 0.15), (3, 0.05)))
        insurance, background = rng.random() < 0.06, rng.random() < 0.04
        price = max(5, round(category.median_dollars * math.exp(rng.gauss(0, 0.45)))) * 100
        urgent = rng.random() < 0.05
        state = self.shares(TASK_STATE_SHARES)
        worker = None
        if state not in ("OPEN", "EXPIRED"):
            worker = self.pick_worker(poster, metro, trade, tier, insurance, background)
            if worker is None and state != "CANCELLED":
                state = "OPEN"  # nobody local could take it
        if state == "CANCELLED" and rng.random() < 0.6:
            worker = None  # cancelled before anyone took it
        funded = state not in ("OPEN", "CANCELLED", "EXPIRED") or worker is not None
        if not funded:
            funded = rng.random() < (0.93 if state == "OPEN" else 0.8)
        split = state == "COMPLETED" and rng.random() < 0.04  # settled by a dispute
        t = self._timeline(state, urgent, funded, worker is not None)
        if split and t.submitted:
            t.disputed = self.after(t.submitted, timedelta(minutes=10), 6 * HOUR)

        task_id = self.uuid()
        lat, lng = self.point(metro)
        address = (f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(STREET_SUFFIXES)},"
                   f" {metro.name}, {metro.state}")  # fmt: skip
        description = (
            f"{category.name.replace('_', ' ').title()} job for a neighbour in {metro.name}."
        )
        out.tasks.append((
            task_id, poster.id, worker.id if worker else None, rng.choice(category.titles),
            description, category.name, price, "USD", address, metro.state,
            f"SRID=4326;POINT({lng:.6f} {lat:.6f})", urgent, t.deadline, trade, tier, insurance,
            background, True, state, "Plans changed." if state == "CANCELLED" else None, t.funded,
            t.created, t.last, t.accepted, t.submitted, t.disputed, t.completed, t.cancelled,
            t.expired,
        ))  # fmt: skip
        self._escrow(out, task_id, state, price, funded, split, t)
        if worker and t.submitted:
            self._proof(out, task_id, worker, state, t)
            if t.disputed:
                self._dispute(out, task_id, rng.choice((poster.id, worker.id)), price, split, t)
        if worker and t.accepted:
            self._messages(out, task_id, poster.id, worker.id, t)
        if worker and t.completed:
            ratings, windows = self.extra.for_task(task_id, poster.id, worker.id, t.completed)
            out.ratings.extend(ratings)
            out.rating_windows.extend(windows)

    def _escrow(self, out: TaskBatch, task_id: str, state: str, price: int, funded: bool,
                split: bool, t: Timeline) -> None:  # fmt: skip
        escrow_state = {
            "OPEN": "FUNDED" if funded else "PENDING", "ACCEPTED": "FUNDED",
            "PROOF_SUBMITTED": "FUNDED", "DISPUTED": "LOCKED_DISPUTE",
            "COMPLETED": "REFUND_PARTIAL" if split else "RELEASED",
            "CANCELLED": "REFUNDED" if funded else "PENDING",
            "EXPIRED": "REFUNDED" if funded else "PENDING",
        }[state]  # fmt: skip
        released = {"RELEASED": price, "REFUND_PARTIAL": self.split_release(price)}.get(
            escrow_state, 0
        )
        refunded = {"REFUNDED": price, "REFUND_PARTIAL": price - released}.get(escrow_state, 0)
        settled = t.completed or t.cancelled or t.expired if released or refunded else None
        locked = t.disputed if escrow_state in ("LOCKED_DISPUTE", "REFUND_PARTIAL") else None
        reference = f"pi_seed_{task_id[:8]}{task_id[9:13]}" if funded else None
        out.escrows.append((self.uuid(), task_id, price, "USD", escrow_state, reference, released,
                            refunded, t.created, t.last, t.funded, locked, settled))  # fmt: skip

    @staticmethod
    def split_release(price: int) -> int:
        """What a SPLIT releases to the worker: a deterministic share of the price, in dollars."""
        return max(1, price // 100 * (20 + price % 61) // 100) * 100

    def _proof(
        self, out: TaskBatch, task_id: str, worker: SeedUser, state: str, t: Timeline
    ) -> None:
        assert t.submitted is not None
        proof_id = self.uuid()
        proof_state = "ACCEPTED" if state == "COMPLETED" else "SUBMITTED"
        out.proofs.append((proof_id, task_id, worker.id, "All done, photos attached.", proof_state,
                           None, t.submitted, t.completed))  # fmt: skip
        for position in range(1, self.rng.choice((1, 1, 2, 3)) + 1):
            upload = self.upload_row(worker.id, "PROOF_PHOTO", t.submitted - 2 * MINUTE,
                                     prefix=f"proofs/{task_id}")  # fmt: skip
            out.uploads.append(upload)
            out.photos.append((proof_id, position, upload[0]))

    def _dispute(self, out: TaskBatch, task_id: str, opener: str, price: int, split: bool,
                 t: Timeline) -> None:  # fmt: skip
        out.disputes.append((
            self.uuid(), task_id, opener, "The work does not match the description.",
            "RESOLVED" if split else "OPEN", "SPLIT" if split else None,
            self.split_release(price) if split else None,
            self.rng.choice(self.admins) if split else None,
            "Half the job was done." if split else None, t.disputed, t.completed if split else None,
        ))  # fmt: skip

    def _messages(self, out: TaskBatch, task_id: str, poster: str, worker: str,
                  t: Timeline) -> None:  # fmt: skip
        """A thread between the task's acceptance and its end (or now), as the database allows
        it: written while the task was in progress, and gone 90 days after an undisputed task
        ended (message.purge)."""
        assert t.accepted is not None
        ended = t.completed or t.cancelled
        if ended and not t.disputed and ended <= self.now - 90 * DAY:
            return
        rng = self.message_rng
        count = rng.choice((0, 1, 2, 2, 3, 4, 6))
        until = ended or self.now
        span = (until - t.accepted).total_seconds()
        if span <= 0:
            return
        moments = sorted(rng.random() * span for _ in range(count))
        for i, offset in enumerate(moments):
            from_poster = (i % 2 == 0) != (rng.random() < 0.25)
            sender, recipient = (poster, worker) if from_poster else (worker, poster)
            body = rng.choice(POSTER_LINES if from_poster else WORKER_LINES)
            sent = t.accepted + timedelta(seconds=offset)
            read = sent + rng.randint(1, 240) * MINUTE
            out.messages.append((self.uuid_from(rng), task_id, sender, recipient, body, sent,
                                 read if read <= self.now else None))  # fmt: skip

    @staticmethod
    def uuid_from(rng: random.Random) -> str:
        """A version-4 UUID drawn from `rng`."""
        bits = rng.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62) | (0x4 << 76) | (0x2 << 62)
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
