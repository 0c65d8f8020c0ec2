"""Records → hustle.v2 messages (and v2 enum values → domain enums), shared by the v2
servicers. The one place where v2's wire shapes are made; it imports nothing of v1."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from hustle.v2 import (
    auth_pb2,
    common_pb2,
    dispute_pb2,
    feed_pb2,
    notification_pb2,
    rating_pb2,
    task_pb2,
    upload_pb2,
    user_pb2,
    verification_pb2,
)
from server.api.enums import EnumMap
from server.domain import notifications as n
from server.domain import ratings
from server.domain import records as r
from server.domain.auth import Grant

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TASK_STATES = EnumMap(r.TaskState, task_pb2.TaskState)
ESCROW_STATES = EnumMap(r.EscrowState, task_pb2.EscrowState)
PROOF_STATES = EnumMap(r.ProofState, task_pb2.ProofState)
DISPUTE_STATES = EnumMap(r.DisputeState, dispute_pb2.DisputeState)
RESOLUTIONS = EnumMap(r.Resolution, dispute_pb2.DisputeResolution)
USER_MODES = EnumMap(r.UserMode, user_pb2.UserMode)
TRUST_TIERS = EnumMap(r.TrustTier, user_pb2.TrustTier)
FEED_MODES = EnumMap(r.FeedMode, feed_pb2.FeedMode)
UPLOAD_PURPOSES = EnumMap(r.UploadPurpose, upload_pb2.UploadPurpose)
UPLOAD_STATES = EnumMap(r.UploadState, upload_pb2.UploadState)
VERIFICATION_KINDS = EnumMap(r.VerificationKind, verification_pb2.VerificationKind)
VERIFICATION_STATES = EnumMap(r.VerificationState, verification_pb2.VerificationState)
RATING_ROLES = EnumMap(ratings.RatingRole, rating_pb2.RatingRole)
RATING_TAGS = EnumMap(ratings.RatingTag, rating_pb2.RatingTag)


def timestamp(value: datetime | None) -> Timestamp | None:
    """An aware datetime as a Timestamp (exact; cheaper than `Timestamp.FromDatetime`)."""
    if value is None:
        return None
    since = value - EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


def money(cents: int, currency: str = "USD") -> common_pb2.Money:
    return common_pb2.Money(amount_cents=cents, currency=currency)


def session(grant: Grant) -> auth_pb2.Session:
    return auth_pb2.Session(
        session_id=grant.session_id,
        access_token=grant.token,
        expires_at=timestamp(grant.expires_at),
    )


def session_info(info: r.SessionInfo, current_session_id: str) -> auth_pb2.SessionInfo:
    return auth_pb2.SessionInfo(
        session_id=info.id,
        created_at=timestamp(info.created_at),
        expires_at=timestamp(info.expires_at),
        last_seen_at=timestamp(info.last_seen_at),
        user_agent=info.user_agent or "",
        current=info.id == current_session_id,
    )


def me(user: r.User) -> user_pb2.Me:
    return user_pb2.Me(
        user_id=user.id,
        email=user.email,
        email_verified=user.email_verified_at is not None,
        phone_number=(user.phone or "") if user.phone_verified_at else "",
        phone_verified=user.phone_verified_at is not None,
        full_name=user.full_name,
        default_mode=USER_MODES.to_proto(user.default_mode),
        trust_tier=TRUST_TIERS.to_proto(user.trust_tier),
        xp_total=user.xp_total,
        level=user.level,
        location_state=(user.location_state or "").strip(),
        is_admin=user.is_admin,
        created_at=timestamp(user.created_at),
        avatar_upload_id=user.avatar_upload_id or "",
    )


def public_user(
    user: r.User,
    worker_rating: ratings.Summary | None = None,
    poster_rating: ratings.Summary | None = None,
) -> user_pb2.PublicUser:
    return user_pb2.PublicUser(
        user_id=user.id,
        full_name=user.full_name,
        avatar_upload_id=user.avatar_upload_id or "",
        trust_tier=TRUST_TIERS.to_proto(user.trust_tier),
        xp_total=user.xp_total,
        level=user.level,
        worker_rating=rating_summary(worker_rating) if worker_rating else None,
        poster_rating=rating_summary(poster_rating) if poster_rating else None,
    )


def task(record: r.Task) -> task_pb2.Task:
    return task_pb2.Task(
        task_id=record.id,
        poster_id=record.poster_id,
        worker_id=record.worker_id or "",
        title=record.title,
        description=record.description,
        category=record.category,
        price=money(record.price_cents, record.currency),
        address=record.address,
        location_state=record.location_state,
        location=common_pb2.LatLng(latitude=record.latitude, longitude=record.longitude),
        urgent=record.urgent,
        deadline=timestamp(record.deadline),
        requirements=task_pb2.TaskRequirements(
            required_trade=record.required_trade or "",
            required_trust_tier=TRUST_TIERS.to_proto(r.TrustTier(record.required_trust_tier)),
            insurance_required=record.insurance_required,
            background_check_required=record.background_check_required,
        ),
        state=TASK_STATES.to_proto(record.state),
        escrow_state=ESCROW_STATES.to_proto(record.escrow_state),
        created_at=timestamp(record.created_at),
        funded_at=timestamp(record.funded_at),
        accepted_at=timestamp(record.accepted_at),
        proof_submitted_at=timestamp(record.proof_submitted_at),
        closed_at=timestamp(record.closed_at),
        eligible=record.eligible,
    )


def proof(record: r.Proof) -> task_pb2.Proof:
    return task_pb2.Proof(
        proof_id=record.id,
        note=record.note,
        photo_upload_ids=record.photos,
        state=PROOF_STATES.to_proto(record.state),
        rejection_reason=record.rejection_reason or "",
        created_at=timestamp(record.created_at),
    )


def dispute(record: r.Dispute, currency: str = "USD") -> dispute_pb2.Dispute:
    split = record.split_release_cents
    return dispute_pb2.Dispute(
        dispute_id=record.id,
        task_id=record.task_id,
        opened_by=record.opened_by,
        reason=record.reason,
        state=DISPUTE_STATES.to_proto(record.state),
        resolution=RESOLUTIONS.to_proto(record.resolution)
        if record.resolution is not None
        else dispute_pb2.DISPUTE_RESOLUTION_UNSPECIFIED,
        split_release=money(split, currency) if split else None,
        resolution_note=record.resolution_note or "",
        created_at=timestamp(record.created_at),
        resolved_at=timestamp(record.resolved_at),
    )


def upload(record: r.Upload, download: str = "", thumbnail: str = "") -> upload_pb2.Upload:
    return upload_pb2.Upload(
        upload_id=record.id,
        purpose=UPLOAD_PURPOSES.to_proto(record.purpose),
        state=UPLOAD_STATES.to_proto(record.state),
        content_type=record.content_type,
        size_bytes=record.size_bytes or 0,
        width=record.width or 0,
        height=record.height or 0,
        rejection_reason=record.rejection_reason or "",
        download_url=download,
        thumbnail_url=thumbnail,
        created_at=timestamp(record.created_at),
    )


def verification(record: r.Verification) -> verification_pb2.Verification:
    return verification_pb2.Verification(
        verification_id=record.id,
        user_id=record.user_id,
        kind=VERIFICATION_KINDS.to_proto(record.kind),
        trade=record.trade or "",
        state=VERIFICATION_STATES.to_proto(record.state),
        expires_at=timestamp(record.expires_at),
        document_upload_ids=record.documents,
        rejection_reason=record.rejection_reason or "",
        submitted_at=timestamp(record.submitted_at),
        reviewed_at=timestamp(record.reviewed_at),
    )


# --- notifications ----------------------------------------------------------------------------
NOTIFICATION_KINDS = EnumMap(r.NotificationKind, notification_pb2.NotificationKind)
NOTIFICATION_CHANNELS = EnumMap(n.NotificationChannel, notification_pb2.NotificationChannel)


def notification(record: r.Notification) -> notification_pb2.Notification:
    return notification_pb2.Notification(
        notification_id=record.id,
        kind=NOTIFICATION_KINDS.to_proto(record.kind),
        title=record.title,
        body=record.body,
        task_id=record.task_id or "",
        created_at=timestamp(record.created_at),
        read_at=timestamp(record.read_at),
    )


def notification_preferences(record: n.Preferences) -> notification_pb2.NotificationPreferences:
    s = record.settings
    location = (
        common_pb2.LatLng(latitude=s.urgent_latitude, longitude=s.urgent_longitude)
        if s.urgent_latitude is not None and s.urgent_longitude is not None
        else None
    )
    return notification_pb2.NotificationPreferences(
        preferences=[
            notification_pb2.NotificationPreference(
                kind=NOTIFICATION_KINDS.to_proto(p.kind),
                channel=NOTIFICATION_CHANNELS.to_proto(p.channel),
                enabled=p.enabled,
            )
            for p in record.preferences
        ],
        quiet_hours=notification_pb2.QuietHours(
            enabled=s.quiet_hours_enabled,
            start_minute=s.quiet_start_minute,
            end_minute=s.quiet_end_minute,
            time_zone=s.time_zone,
        ),
        urgent_sms=notification_pb2.UrgentSms(
            location=location,
            radius_meters=s.urgent_radius_m,
            daily_cap=s.urgent_daily_cap,
            enabled=s.urgent_enabled,
        ),
    )


def rating(record: ratings.Rating) -> rating_pb2.Rating:
    return rating_pb2.Rating(
        rating_id=record.id,
        task_id=record.task_id,
        rater_id=record.rater_id,
        ratee_id=record.ratee_id,
        ratee_role=RATING_ROLES.to_proto(record.ratee_role),
        stars=record.stars,
        comment=record.comment or "",
        tags=[RATING_TAGS.to_proto(ratings.RatingTag(t)) for t in record.tags],
        automatic=record.is_auto,
        created_at=timestamp(record.created_at),
        revealed_at=timestamp(record.revealed_at),
    )


def rating_summary(record: ratings.Summary) -> rating_pb2.RatingSummary:
    return rating_pb2.RatingSummary(
        user_id=record.user_id,
        role=RATING_ROLES.to_proto(record.role),
        visible=record.visible,
        count=record.count,
        automatic_count=record.automatic_count,
        average_stars=float(record.average_stars or 0),
        distribution=record.distribution,
    )
