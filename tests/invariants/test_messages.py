"""Task messaging's rules in the database, attacked with raw SQL: INV-11 (only the task's two
parties write, and only while the task is in progress), INV-12 (length, 1-3 READY photos of the
sender for this thread, immutable but for the read stamp and an admin's hide, deleted only by
the purge), INV-17 (an inactive account cannot write), contact details (HX812) and the hourly
and daily limits (HX501)."""

from __future__ import annotations

import hashlib
import uuid

import psycopg
import pytest

from server.domain import messages
from tests.invariants.world import World, refused

INSERT = "INSERT INTO messages (task_id, sender_id, body) VALUES (%s, %s, %s) RETURNING id"
WITH_PHOTOS = (
    "INSERT INTO messages (task_id, sender_id, body, photo_ids) VALUES (%s, %s, %s, %s::uuid[])"
    " RETURNING id"
)


def message_photo(world: World, owner: object, task: object, *, ready: bool = True) -> uuid.UUID:
    """A MESSAGE_PHOTO upload of `owner` for `task`'s thread (READY unless told)."""
    upload_id = uuid.uuid4()
    world.rows(
        "INSERT INTO uploads (id, owner_id, purpose, content_type, declared_size, object_key)"
        " VALUES (%s, %s, 'MESSAGE_PHOTO', 'image/jpeg', 1000, %s)",
        upload_id,
        owner,
        f"messages/{task}/{upload_id}",
    )
    if ready:
        world.rows("UPDATE uploads SET state = 'UPLOADED' WHERE id = %s", upload_id)
        world.rows(
            "UPDATE uploads SET state = 'READY', size_bytes = 900, sha256 = %s, width = 10,"
            " height = 10 WHERE id = %s",
            hashlib.sha256(upload_id.bytes).digest(),
            upload_id,
        )
    return upload_id


def send(world: World, task: object, sender: object, body: str = "See you at nine") -> object:
    return world.value(INSERT, task, sender, body)


@pytest.fixture
def thread(world: World) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """An ACCEPTED task: (task, poster, worker)."""
    task = world.task_in("ACCEPTED")
    return task, world.poster_of(task), world.worker_of(task)


# --- INV-11 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["ACCEPTED", "PROOF_SUBMITTED", "DISPUTED"])
def test_both_parties_write_while_the_task_is_in_progress(world: World, state: str) -> None:
    task = world.task_in(state)
    poster, worker = world.poster_of(task), world.worker_of(task)
    first = send(world, task, poster, "Hello")
    send(world, task, worker, "Hi")
    # the recipient is the other party, whatever the statement said
    world.rows(
        "INSERT INTO messages (task_id, sender_id, recipient_id, body) VALUES (%s, %s, %s, 'x y')",
        task,
        worker,
        world.user(),
    )
    rows = world.rows(
        "SELECT sender_id, recipient_id FROM messages WHERE task_id = %s ORDER BY created_at, body",
        task,
    )
    assert sorted(rows) == sorted([(poster, worker), (worker, poster), (worker, poster)])
    assert world.value("SELECT recipient_id FROM messages WHERE id = %s", first) == worker


@pytest.mark.parametrize("state", ["OPEN", "COMPLETED", "CANCELLED", "EXPIRED"])
def test_a_closed_thread_refuses_messages(world: World, state: str) -> None:
    task = world.task_in(state)
    refused(world, "HX801", INSERT, task, world.poster_of(task), "Anyone there?")


def test_a_stranger_cannot_write(world: World, thread: tuple[uuid.UUID, ...]) -> None:
    task, _, _ = thread
    refused(world, "HX802", INSERT, task, world.user(), "Hello")
    refused(world, "HX802", INSERT, task, world.admin(), "Hello")
    refused(world, "HX302", INSERT, uuid.uuid4(), world.user(), "Hello")
    assert world.value("SELECT count(*) FROM messages") == 0


def test_nobody_backdates_or_pre_reads_a_message(
    world: World, thread: tuple[uuid.UUID, ...]
) -> None:
    task, poster, _ = thread
    world.rows(
        "INSERT INTO messages (task_id, sender_id, body, created_at)"
        " VALUES (%s, %s, 'old', now() - interval '2 days')",
        task,
        poster,
    )
    assert world.value("SELECT created_at > now() - interval '1 minute' FROM messages")
    refused(
        world,
        "HX301",
        "INSERT INTO messages (task_id, sender_id, body, read_at) VALUES (%s, %s, 'x', now())",
        task,
        poster,
    )


# --- INV-17 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["SUSPENDED", "BANNED"])
def test_an_inactive_account_cannot_write(
    world: World, thread: tuple[uuid.UUID, ...], status: str
) -> None:
    task, poster, worker = thread
    world.rows(
        "UPDATE users SET account_status = %s, account_status_at = now() WHERE id = %s",
        status,
        worker,
    )
    refused(world, "HX405", INSERT, task, worker, "Still here")
    send(world, task, poster, "Are you?")  # the other party still may


# --- INV-12: content --------------------------------------------------------------------------
@pytest.mark.parametrize("body", ["x" * 501, "", "   "])
def test_text_is_1_to_500_characters(
    world: World, thread: tuple[uuid.UUID, ...], body: str
) -> None:
    task, poster, _ = thread
    refused(world, "HX804", INSERT, task, poster, body)


def test_a_message_has_text_or_photos(world: World, thread: tuple[uuid.UUID, ...]) -> None:
    task, poster, _ = thread
    refused(world, "HX804", INSERT, task, poster, None)
    send(world, task, poster, "x" * 500)
    refused(
        world,
        "HX301",
        "INSERT INTO messages (task_id, sender_id, body, caption) VALUES (%s, %s, 'hi', 'a caption')",
        task,
        poster,
    )
    photo = message_photo(world, poster, task)
    refused(
        world,
        "HX804",
        "INSERT INTO messages (task_id, sender_id, photo_ids, caption) VALUES (%s, %s, %s::uuid[], %s)",
        task,
        poster,
        [str(photo)],
        "c" * 201,
    )


def test_photos_are_1_to_3_ready_message_photos_of_the_sender_for_this_thread(
    world: World, thread: tuple[uuid.UUID, ...]
) -> None:
    task, poster, worker = thread
    mine = [str(message_photo(world, poster, task)) for _ in range(4)]
    refused(world, "HX803", WITH_PHOTOS, task, poster, None, mine)
    refused(world, "HX803", WITH_PHOTOS, task, poster, None, [mine[0], mine[0]])
    theirs = str(message_photo(world, worker, task))
    refused(world, "HX803", WITH_PHOTOS, task, poster, None, [theirs])
    pending = str(message_photo(world, poster, task, ready=False))
    refused(world, "HX803", WITH_PHOTOS, task, poster, None, [pending])
    other = world.task_in("ACCEPTED")
    elsewhere = str(message_photo(world, poster, other))
    refused(world, "HX803", WITH_PHOTOS, task, poster, None, [elsewhere])
    proof_photo = str(world.upload(poster))
    refused(world, "HX803", WITH_PHOTOS, task, poster, None, [proof_photo])
    refused(world, "HX803", WITH_PHOTOS, task, poster, None, [str(uuid.uuid4())])
    world.rows(WITH_PHOTOS, task, poster, None, mine[:3])
    refused(world, "HX803", WITH_PHOTOS, task, poster, "again", [mine[0]])  # sent once
    world.rows(WITH_PHOTOS, task, worker, "Here it is", [theirs])
    assert world.value("SELECT sum(cardinality(photo_ids)) FROM messages") == 4


def test_a_message_photo_upload_lives_under_its_thread(world: World) -> None:
    owner, upload = world.user(), uuid.uuid4()
    refused(
        world,
        "HX301",
        "INSERT INTO uploads (owner_id, purpose, content_type, declared_size, object_key)"
        " VALUES (%s, 'MESSAGE_PHOTO', 'image/jpeg', 100, %s)",
        owner,
        f"messages/{owner}/not-this-upload",
    )
    refused(
        world,
        "HX301",
        "INSERT INTO uploads (id, owner_id, purpose, content_type, declared_size, object_key)"
        " VALUES (%s, %s, 'MESSAGE_PHOTO', 'image/webp', %s, %s)",
        upload,
        owner,
        100,
        f"messages/{uuid.uuid4()}/{upload}",
    )
    refused(
        world,
        "HX301",
        "INSERT INTO uploads (id, owner_id, purpose, content_type, declared_size, object_key)"
        " VALUES (%s, %s, 'MESSAGE_PHOTO', 'image/jpeg', %s, %s)",
        upload,
        owner,
        5 * 1024 * 1024 + 1,
        f"messages/{uuid.uuid4()}/{upload}",
    )


CONTACTS = [
    ("call me at 415 555 0123 tonight", True),
    ("+1 (415) 555-0123", True),
    ("4155550123", True),
    ("mail ana.b+jobs@example.co.uk", True),
    ("see https://example.org/x", True),
    ("www.example", True),
    ("find me on hustle-deals.com!", True),
    ("my site is ana.dev", True),
    ("Done by 10:30, the bill is $1,250.00", False),
    ("meet on 2026-12-02 at 9", False),
    ("The dog is friendly, e.g. with kids.", False),
    ("Apt 12, door code 4471", False),
]


@pytest.mark.parametrize(("text", "contact"), CONTACTS)
def test_contact_details_are_refused_by_the_same_rule_in_both_layers(
    world: World, thread: tuple[uuid.UUID, ...], text: str, contact: bool
) -> None:
    task, poster, _ = thread
    assert world.value("SELECT message_has_contact(%s)", text) is contact
    assert messages.has_contact(text) is contact
    if contact:
        refused(world, "HX812", INSERT, task, poster, text)
    else:
        send(world, task, poster, text)


# --- INV-12: immutability ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [
        "UPDATE messages SET body = 'I never said that' WHERE id = %s",
        "UPDATE messages SET created_at = created_at - interval '1 day' WHERE id = %s",
        "UPDATE messages SET sender_id = recipient_id, recipient_id = sender_id WHERE id = %s",
        "DELETE FROM messages WHERE id = %s",
    ],
)
def test_a_message_cannot_be_edited_or_deleted(
    world: World, thread: tuple[uuid.UUID, ...], change: str
) -> None:
    task, poster, _ = thread
    message = send(world, task, poster)
    refused(world, "HX102", change, message)
    assert world.value("SELECT body FROM messages WHERE id = %s", message) == "See you at nine"


def test_the_thread_cannot_be_emptied(world: World, thread: tuple[uuid.UUID, ...]) -> None:
    task, poster, _ = thread
    send(world, task, poster)
    refused(world, "HX102", "TRUNCATE messages")


def test_read_once_and_hidden_once_by_an_admin(world: World, thread: tuple[uuid.UUID, ...]) -> None:
    task, poster, _ = thread
    message = send(world, task, poster)
    world.rows("UPDATE messages SET read_at = now() WHERE id = %s", message)
    refused(world, "HX102", "UPDATE messages SET read_at = now() + interval '1 hour' WHERE id = %s",
            message)  # fmt: skip
    refused(world, "HX102", "UPDATE messages SET read_at = NULL WHERE id = %s", message)
    refused(
        world,
        "HX205",
        "UPDATE messages SET hidden_at = now(), hidden_by = %s, hidden_reason = 'spam' WHERE id = %s",
        poster,
        message,
    )
    with pytest.raises(psycopg.errors.CheckViolation):  # a hide says who and why
        world.rows("UPDATE messages SET hidden_at = now() WHERE id = %s", message)
    admin = world.admin()
    world.rows(
        "UPDATE messages SET hidden_at = now(), hidden_by = %s, hidden_reason = 'spam' WHERE id = %s",
        admin,
        message,
    )
    refused(
        world,
        "HX102",
        "UPDATE messages SET hidden_at = NULL, hidden_by = NULL, hidden_reason = NULL WHERE id = %s",
        message,
    )


def backdate_end(world: World, task: object, days: int) -> None:
    """Arrange (not an attack): the task ended `days` ago, as a restore of old data would say."""
    with world.transaction():
        world.rows("SET LOCAL session_replication_role = replica")
        world.rows(
            "UPDATE tasks SET completed_at = now() - make_interval(days => %s),"
            " cancelled_at = CASE WHEN cancelled_at IS NOT NULL THEN now() - make_interval(days => %s) END"
            " WHERE id = %s",
            days,
            days,
            task,
        )


def test_only_the_purge_deletes_ninety_days_after_an_undisputed_end(world: World) -> None:
    kept, purged, disputed = (world.task_in("ACCEPTED") for _ in range(3))
    ids = {}
    for task in (kept, purged, disputed):
        ids[task] = send(world, task, world.poster_of(task))
    for task in (kept, purged):
        world.submit_proof(task)
        world.approve(task)
    world.submit_proof(disputed)
    world.dispute(disputed)
    world.resolve(disputed, "RELEASE")
    backdate_end(world, kept, 89)
    backdate_end(world, purged, 91)
    backdate_end(world, disputed, 400)
    refused(world, "HX102", "DELETE FROM messages WHERE id = %s", ids[kept])
    refused(world, "HX102", "DELETE FROM messages WHERE id = %s", ids[disputed])
    assert world.rows("SELECT message_purgeable(%s), message_purgeable(%s)", purged, kept) == [
        (True, False)
    ]
    assert world.rows("DELETE FROM messages WHERE id = %s RETURNING task_id", ids[purged]) == [
        (purged,)
    ]


# --- limits -----------------------------------------------------------------------------------
def test_ten_messages_an_hour_in_one_thread(world: World, thread: tuple[uuid.UUID, ...]) -> None:
    task, poster, worker = thread
    for i in range(10):
        send(world, task, poster, f"note {i}")
    refused(world, "HX501", INSERT, task, poster, "one more")
    send(world, task, worker, "my turn")  # counted per sender
    other = world.task_in("ACCEPTED")
    send(world, other, world.poster_of(other), "a new thread")


def test_a_hundred_messages_a_day(world: World) -> None:
    worker = world.worker()
    tasks = [world.task_in("OPEN") for _ in range(11)]
    for task in tasks:
        world.accept(task, worker)
    for task in tasks[:10]:
        for i in range(10):
            send(world, task, worker, f"update {i}")
    refused(world, "HX501", INSERT, tasks[10], worker, "the 101st")


def test_fifty_photos_a_day(world: World) -> None:
    worker = world.worker()
    tasks = [world.task_in("OPEN") for _ in range(2)]
    for task in tasks:
        world.accept(task, worker)
    for n in range(16):  # 48 photos
        task = tasks[n // 8]
        photos = [str(message_photo(world, worker, task)) for _ in range(3)]
        world.rows(WITH_PHOTOS, task, worker, None, photos)
    last = tasks[1]
    three = [str(message_photo(world, worker, last)) for _ in range(3)]
    refused(world, "HX501", WITH_PHOTOS, last, worker, None, three)
    world.rows(WITH_PHOTOS, last, worker, None, three[:2])  # exactly 50
