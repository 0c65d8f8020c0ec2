"""Users, sessions, one-time codes, uploads and verifications: their rules in the database."""

from __future__ import annotations

import hashlib
import os
import uuid

import psycopg
import pytest

from tests.invariants.world import ARGON, World, hx_code, refused


def test_one_account_per_email(world: World) -> None:
    world.rows(
        "INSERT INTO users (email, password_hash, full_name) VALUES ('a@example.com', %s, 'A')",
        ARGON,
    )
    refused(
        world,
        "HX303",
        "INSERT INTO users (email, password_hash, full_name) VALUES ('a@example.com', %s, 'B')",
        ARGON,
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [("email", "Not-Lower@Example.com"), ("email", "no-at-sign"), ("phone", "555-1234"), ("full_name", "  "),
     ("location_state", "ca"), ("default_mode", "ADMIN")],
)  # fmt: skip
def test_user_fields_are_validated(world: World, column: str, value: str) -> None:
    user = world.user()
    refused(world, "HX301", f"UPDATE users SET {column} = %s WHERE id = %s", value, user)


def test_only_argon2id_hashes_are_stored(world: World) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        world.rows(
            "INSERT INTO users (email, password_hash, full_name) VALUES ('p@example.com', 'hunter2', 'P')"
        )


def code_row(
    world: World, purpose: str = "PHONE_VERIFICATION", lifetime: str = "10 minutes"
) -> uuid.UUID:
    user = world.user()
    code: uuid.UUID = world.value(
        "INSERT INTO one_time_codes (user_id, purpose, code_hash, target, expires_at)"
        " VALUES (%s, %s, %s, '+15551234567', now() + %s::interval) RETURNING id",
        user,
        purpose,
        hashlib.sha256(os.urandom(8)).digest(),
        lifetime,
    )
    return code


def test_code_is_single_use(world: World) -> None:
    code = code_row(world)
    world.rows("UPDATE one_time_codes SET used_at = now() WHERE id = %s", code)
    refused(world, "HX403", "UPDATE one_time_codes SET used_at = now() WHERE id = %s", code)
    refused(world, "HX403", "UPDATE one_time_codes SET used_at = NULL WHERE id = %s", code)


def test_code_allows_five_attempts(world: World) -> None:
    code = code_row(world)
    for _ in range(5):
        world.rows("UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = %s", code)
    assert world.value("SELECT attempts FROM one_time_codes WHERE id = %s", code) == 5
    refused(world, "HX404", "UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = %s", code)
    refused(world, "HX404", "UPDATE one_time_codes SET used_at = now() WHERE id = %s", code)
    refused(world, "HX003", "UPDATE one_time_codes SET attempts = 0 WHERE id = %s", code)


def test_expired_code_cannot_be_used(world: World) -> None:
    code = code_row(world, lifetime="1 millisecond")
    world.rows("SELECT pg_sleep(0.01)")  # the code's whole lifetime is 1 ms
    assert world.value("SELECT expires_at < now() FROM one_time_codes WHERE id = %s", code)
    refused(world, "HX403", "UPDATE one_time_codes SET used_at = now() WHERE id = %s", code)


@pytest.mark.parametrize(
    ("purpose", "too_long"),
    [
        ("PHONE_VERIFICATION", "11 minutes"),
        ("PASSWORD_RESET", "61 minutes"),
        ("EMAIL_VERIFICATION", "25 hours"),
    ],
)
def test_code_lifetimes(world: World, purpose: str, too_long: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        code_row(world, purpose, too_long)


def test_revoked_session_stays_revoked(world: World) -> None:
    user = world.user()
    session = world.value(
        "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES (%s, %s, now() + interval '30 days') RETURNING id",
        user,
        hashlib.sha256(b"t").digest(),
    )
    world.rows("UPDATE sessions SET revoked_at = now() WHERE id = %s", session)
    refused(world, "HX003", "UPDATE sessions SET revoked_at = NULL WHERE id = %s", session)


# --- uploads --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "content_type", "size"),
    [("AVATAR", "application/pdf", 100), ("AVATAR", "image/png", 5 * 1024 * 1024 + 1),
     ("PROOF_PHOTO", "image/gif", 100), ("VERIFICATION_DOC", "application/pdf", 25 * 1024 * 1024 + 1),
     ("PROOF_PHOTO", "image/jpeg", 0)],
)  # fmt: skip
def test_upload_type_and_size_per_purpose(
    world: World, purpose: str, content_type: str, size: int
) -> None:
    user = world.user()
    refused(
        world,
        "HX301",
        "INSERT INTO uploads (owner_id, purpose, content_type, declared_size, object_key) VALUES (%s, %s, %s, %s, %s)",
        user,
        purpose,
        content_type,
        size,
        f"x/{uuid.uuid4()}",
    )


def test_upload_machine(world: World) -> None:
    user = world.user()
    upload = world.upload(user, ready=False)
    assert world.value("SELECT state FROM uploads WHERE id = %s", upload) == "PENDING"
    refused(
        world, "HX003", "UPDATE uploads SET state = 'READY' WHERE id = %s", upload
    )  # skips UPLOADED
    world.rows("UPDATE uploads SET state = 'UPLOADED' WHERE id = %s", upload)
    world.rows(
        "UPDATE uploads SET state = 'REJECTED', rejection_reason = 'not a JPEG' WHERE id = %s",
        upload,
    )
    refused(world, "HX003", "UPDATE uploads SET state = 'READY' WHERE id = %s", upload)  # final
    refused(
        world,
        "HX003",
        "INSERT INTO uploads (owner_id, purpose, content_type, declared_size, object_key, state)"
        " VALUES (%s, 'AVATAR', 'image/png', 10, 'a/b', 'READY')",
        user,
    )


def test_avatar_is_own_ready_avatar(world: World) -> None:
    user = world.user()
    for upload, code in (
        (world.upload(world.user(), "AVATAR"), "HX202"),
        (world.upload(user, "AVATAR", ready=False), "HX304"),
        (world.upload(user, "PROOF_PHOTO"), "HX301"),
    ):
        refused(world, code, "UPDATE users SET avatar_upload_id = %s WHERE id = %s", upload, user)
    good = world.upload(user, "AVATAR", content_type="image/png")
    world.rows("UPDATE users SET avatar_upload_id = %s WHERE id = %s", good, user)


# --- verification and capability ---------------------------------------------------------------


def test_verification_machine_and_reviewers(world: World) -> None:
    user = world.user()
    record = world.verification(user, "INSURANCE")
    assert world.value("SELECT state FROM verification_records WHERE id = %s", record) == "PENDING"
    refused(
        world,
        "HX202",
        "UPDATE verification_records SET state = 'APPROVED', reviewed_by = %s WHERE id = %s",
        world.user(),
        record,
    )  # not an admin
    refused(
        world,
        "HX003",
        "UPDATE verification_records SET state = 'EXPIRED', reviewed_by = %s WHERE id = %s",
        world.admin(),
        record,
    )  # PENDING → EXPIRED is not a transition
    world.rows(
        "UPDATE verification_records SET state = 'APPROVED', reviewed_by = %s WHERE id = %s",
        world.admin(),
        record,
    )
    refused(
        world, "HX003", "UPDATE verification_records SET state = 'EXPIRED' WHERE id = %s", record
    )  # not yet
    refused(
        world,
        "HX003",
        "UPDATE verification_records SET expires_at = now() + interval '10 years' WHERE id = %s",
        record,
    )


def test_admin_cannot_approve_own_verification(world: World) -> None:
    admin = world.admin()
    record = world.verification(admin, "ID")
    refused(
        world,
        "HX202",
        "UPDATE verification_records SET state = 'APPROVED', reviewed_by = %s WHERE id = %s",
        admin,
        record,
    )


def test_verification_needs_a_document(world: World) -> None:
    user = world.user()
    with pytest.raises(psycopg.Error) as caught:
        world.rows("INSERT INTO verification_records (user_id, kind) VALUES (%s, 'ID')", user)
    assert hx_code(caught.value) == "HX301"


def test_trade_iff_licence(world: World) -> None:
    user = world.user()
    with pytest.raises(psycopg.Error) as caught, world.transaction():
        world.rows(
            "INSERT INTO verification_records (user_id, kind) VALUES (%s, 'TRADE_LICENSE')", user
        )
    assert hx_code(caught.value) == "HX301"


def test_verification_change_enqueues_a_recompute(world: World) -> None:
    user = world.user()
    record = world.verification(user, "BACKGROUND_CHECK", approve_by=world.admin())
    jobs = world.rows(
        "SELECT job, payload->>'state' FROM outbox WHERE payload->>'verification_id' = %s ORDER BY id",
        str(record),
    )
    assert jobs == [("capability.recompute", "PENDING"), ("capability.recompute", "APPROVED")]


def test_capability_profiles_are_derived_only(world: World) -> None:
    worker = world.worker(tier=2, trades=("electrician",), insurance=True)
    assert world.rows(
        "SELECT trust_tier, trades ? 'electrician', insurance_valid_until > now()"
        " FROM capability_profiles WHERE user_id = %s",
        worker,
    ) == [(2, True, True)]
    refused(
        world, "HX003", "UPDATE capability_profiles SET trust_tier = 4 WHERE user_id = %s", worker
    )
    refused(
        world,
        "HX003",
        "INSERT INTO capability_profiles (user_id, trust_tier) VALUES (%s, 4)",
        world.user(),
    )
    refused(world, "HX003", "DELETE FROM capability_profiles WHERE user_id = %s", worker)


def test_recompute_is_deterministic_and_versions_changes(world: World) -> None:
    worker = world.worker()
    version = world.value("SELECT version FROM capability_profiles WHERE user_id = %s", worker)
    first = world.rows(
        "SELECT location_state, trust_tier, trades, version FROM recompute_capability(%s)", worker
    )
    again = world.rows(
        "SELECT location_state, trust_tier, trades, version FROM recompute_capability(%s)", worker
    )
    assert first == again
    assert first[0][3] == version  # nothing changed: same version
    world.verification(worker, "TRADE_LICENSE", trade="plumber", approve_by=world.admin())
    changed = world.rows("SELECT trades ? 'plumber', version FROM recompute_capability(%s)", worker)
    assert changed == [(True, version + 1)]
