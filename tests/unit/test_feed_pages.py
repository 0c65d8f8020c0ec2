"""A feed page assembled from encoded cards is, byte for byte, what the generated message
serializes; the card cache is bounded and keyed by version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hustle.v1 import feed_pb2
from server.api.feed_pages import CardCache, varint
from server.api.v1 import convert
from server.api.v1.feed import V1Pages
from server.domain.records import EscrowState, FeedMode, Task, TaskState

BASE = datetime(2026, 11, 1, tzinfo=UTC)


def _task(i: int, title: str, description: str, trade: str | None, worker: str | None) -> Task:
    return Task(
        id=f"00000000-0000-4000-8000-{i:012d}",
        poster_id="11111111-1111-4111-8111-111111111111",
        worker_id=worker,
        title=title,
        description=description,
        category="PLUMBING",
        price_cents=500 + i,
        currency="USD",
        address="1 Main St",
        location_state="CA",
        latitude=34.05 + i / 1000,
        longitude=-118.25,
        urgent=i % 2 == 0,
        deadline=BASE + timedelta(days=3, microseconds=i),
        required_trade=trade,
        required_trust_tier=1 + i % 4,
        insurance_required=i % 3 == 0,
        background_check_required=False,
        requires_proof=True,
        state=TaskState.OPEN,
        escrow_state=EscrowState.FUNDED,
        created_at=BASE + timedelta(seconds=i),
        funded_at=BASE + timedelta(seconds=i, microseconds=999_999),
        accepted_at=None,
        proof_submitted_at=None,
        closed_at=None,
        version=1 + i,
        eligible=True,
    )


tasks = st.builds(
    _task,
    st.integers(min_value=0, max_value=10_000),
    st.text(min_size=1, max_size=300),
    st.text(max_size=3000),  # long enough for multi-byte lengths
    st.one_of(st.none(), st.just("electrician")),
    st.none(),
)
distances = st.one_of(st.just(0.0), st.floats(min_value=0, max_value=80_000, allow_nan=False))


@settings(max_examples=200)
@given(
    items=st.lists(st.tuples(tasks, distances), max_size=60),
    token=st.one_of(st.just(""), st.text(min_size=1, max_size=400)),
)
def test_an_assembled_page_is_the_generated_messages_bytes(
    items: list[tuple[Task, float]], token: str
) -> None:
    encoder = V1Pages()
    assembled = encoder.page([(encoder.card(t), d) for t, d in items], token, FeedMode.NORMAL)
    expected = feed_pb2.GetFeedResponse(
        items=[feed_pb2.FeedItem(task=convert.task(t), distance_meters=d) for t, d in items],
        next_page_token=token,
    ).SerializeToString()
    assert assembled == expected
    assert feed_pb2.GetFeedResponse.FromString(assembled) == feed_pb2.GetFeedResponse.FromString(
        expected
    )


def test_varint_matches_protobuf() -> None:
    for value in (0, 1, 127, 128, 300, 16_383, 16_384, 2**21, 2**35):
        message = feed_pb2.GetFeedRequest(page_size=min(value, 2**31 - 1))
        if 0 < value < 2**31:
            assert message.SerializeToString()[1:] == varint(value)


def test_the_card_cache_is_bounded_and_versioned() -> None:
    cards = CardCache(2)
    cards.put("a", 1, b"a1")
    cards.put("b", 1, b"b1")
    assert cards.get("a", 1) == b"a1"  # a is now the most recent
    cards.put("c", 1, b"c1")  # b goes
    assert (cards.get("b", 1), cards.get("a", 1), cards.get("c", 1)) == (None, b"a1", b"c1")
    assert cards.get("a", 2) is None  # another version is another card
    assert len(cards) == 2
