"""The records the domain returns: one frozen, slotted dataclass per thing the API shows, and the
enums of their states and kinds.

Rows become these at the SQL boundary (`server.db.Rows` with `record_row`): a record's fields
are the columns of the statements that build it, by name, so mypy checks every use from the SQL
result to the protobuf message (each API version converts records to its own messages; the
domain never sees protobuf). Enum values are the database's text values; uuid columns arrive as
`str`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum


class TaskState(StrEnum):
    OPEN = "OPEN"
    ACCEPTED = "ACCEPTED"
    PROOF_SUBMITTED = "PROOF_SUBMITTED"
    DISPUTED = "DISPUTED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.CANCELLED, TaskState.EXPIRED)


class EscrowState(StrEnum):
    PENDING = "PENDING"
    FUNDED = "FUNDED"
    LOCKED_DISPUTE = "LOCKED_DISPUTE"
    RELEASED = "RELEASED"
    REFUNDED = "REFUNDED"
    REFUND_PARTIAL = "REFUND_PARTIAL"


class ProofState(StrEnum):
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


class DisputeState(StrEnum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


class Resolution(StrEnum):
    RELEASE = "RELEASE"
    REFUND = "REFUND"
    SPLIT = "SPLIT"


class TrustTier(IntEnum):
    """DOMAIN.md's tiers 1 to 4 (users.trust_tier)."""

    ROOKIE = 1
    VERIFIED = 2
    TRUSTED = 3
    ELITE = 4


class UserMode(StrEnum):
    POSTER = "POSTER"
    WORKER = "WORKER"


class UploadPurpose(StrEnum):
    AVATAR = "AVATAR"
    PROOF_PHOTO = "PROOF_PHOTO"
    VERIFICATION_DOC = "VERIFICATION_DOC"
    MESSAGE_PHOTO = "MESSAGE_PHOTO"  # hustle.v2 only


class UploadState(StrEnum):
    PENDING = "PENDING"
    UPLOADED = "UPLOADED"
    READY = "READY"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class VerificationKind(StrEnum):
    TRADE_LICENSE = "TRADE_LICENSE"
    INSURANCE = "INSURANCE"
    BACKGROUND_CHECK = "BACKGROUND_CHECK"
    ID = "ID"


class VerificationState(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class FeedMode(StrEnum):
    NORMAL = "NORMAL"
    URGENT = "URGENT"
    NEARBY = "NEARBY"


class NotificationKind(StrEnum):
    TASK_ACCEPTED = "TASK_ACCEPTED"
    TASK_CANCELLED = "TASK_CANCELLED"
    TASK_EXPIRED = "TASK_EXPIRED"
    PROOF_SUBMITTED = "PROOF_SUBMITTED"
    PROOF_ACCEPTED = "PROOF_ACCEPTED"
    PROOF_REJECTED = "PROOF_REJECTED"
    DISPUTE_OPENED = "DISPUTE_OPENED"
    DISPUTE_RESOLVED = "DISPUTE_RESOLVED"
    ESCROW_FUNDED = "ESCROW_FUNDED"
    ESCROW_RELEASED = "ESCROW_RELEASED"
    ESCROW_REFUNDED = "ESCROW_REFUNDED"
    XP_EARNED = "XP_EARNED"
    LEVEL_UP = "LEVEL_UP"
    TRUST_TIER_CHANGED = "TRUST_TIER_CHANGED"
    VERIFICATION_APPROVED = "VERIFICATION_APPROVED"
    VERIFICATION_REJECTED = "VERIFICATION_REJECTED"
    VERIFICATION_EXPIRED = "VERIFICATION_EXPIRED"
    NEW_MESSAGE = "NEW_MESSAGE"
    RATING_REQUESTED = "RATING_REQUESTED"
    RATINGS_REVEALED = "RATINGS_REVEALED"
    URGENT_TASK_NEARBY = "URGENT_TASK_NEARBY"
    ACCOUNT_SUSPENDED = "ACCOUNT_SUSPENDED"
    ACCOUNT_REINSTATED = "ACCOUNT_REINSTATED"


@dataclass(frozen=True, slots=True)
class Task:
    """A task as the API shows it (the `task_cards` view), with whether the caller may take it
    when the statement asks (`eligible`)."""

    id: str
    poster_id: str
    worker_id: str | None
    title: str
    description: str
    category: str
    price_cents: int
    currency: str
    address: str
    location_state: str
    latitude: float
    longitude: float
    urgent: bool
    deadline: datetime
    required_trade: str | None
    required_trust_tier: int
    insurance_required: bool
    background_check_required: bool
    requires_proof: bool
    state: TaskState
    escrow_state: EscrowState
    created_at: datetime
    funded_at: datetime | None
    accepted_at: datetime | None
    proof_submitted_at: datetime | None
    closed_at: datetime | None
    version: int  # moves with every change of the task's row (feed cards are keyed by it)
    eligible: bool = False


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """A place in a feed page: which task, at which version, how far (NEARBY; else 0), and its
    keyset position. The page's cards are read (or found encoded) by id and version."""

    id: str
    version: int
    created_at: datetime
    distance: float


@dataclass(frozen=True, slots=True)
class Proof:
    id: str
    note: str
    state: ProofState
    rejection_reason: str | None
    created_at: datetime
    photos: list[str]


@dataclass(frozen=True, slots=True)
class Dispute:
    id: str
    task_id: str
    opened_by: str
    reason: str
    state: DisputeState
    resolution: Resolution | None
    split_release_cents: int | None
    resolved_by: str | None
    resolution_note: str | None
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class User:
    """A user's own account (the public profile is a part of it)."""

    id: str
    email: str
    email_verified_at: datetime | None
    phone: str | None
    phone_verified_at: datetime | None
    full_name: str
    default_mode: UserMode
    trust_tier: TrustTier
    xp_total: int
    level: int
    location_state: str | None
    is_admin: bool
    created_at: datetime
    avatar_upload_id: str | None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One of a user's live sessions (never its token)."""

    id: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    owner_id: str
    purpose: UploadPurpose
    content_type: str
    declared_size: int
    object_key: str
    state: UploadState
    size_bytes: int | None
    sha256: bytes | None
    width: int | None
    height: int | None
    thumbnail_key: str | None
    rejection_reason: str | None
    created_at: datetime
    uploaded_at: datetime | None
    processed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Verification:
    id: str
    user_id: str
    kind: VerificationKind
    trade: str | None
    state: VerificationState
    expires_at: datetime | None
    submitted_at: datetime
    reviewed_at: datetime | None
    reviewed_by: str | None
    rejection_reason: str | None
    expired_at: datetime | None
    documents: list[str]


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    kind: NotificationKind
    title: str
    body: str
    task_id: str | None
    created_at: datetime
    read_at: datetime | None
