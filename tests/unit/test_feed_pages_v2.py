"""v2's feed pages, assembled from encoded cards, are byte for byte what the generated message
serializes: with each item's distance in NEARBY pages (0 included: the field is `optional`), and
without it elsewhere."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hustle.v2 import feed_pb2
from server.api.v2 import convert
from server.api.v2.feed import V2Pages
from server.domain.records import FeedMode, Task
from tests.unit.test_feed_pages import distances, tasks


@settings(max_examples=100)
@given(
    items=st.lists(st.tuples(tasks, distances), max_size=40),
    token=st.one_of(st.just(""), st.text(min_size=1, max_size=400)),
    nearby=st.booleans(),
)
def test_an_assembled_v2_page_is_the_generated_messages_bytes(
    items: list[tuple[Task, float]], token: str, nearby: bool
) -> None:
    encoder = V2Pages()
    mode = FeedMode.NEARBY if nearby else FeedMode.NORMAL
    assembled = encoder.page([(encoder.card(t), d) for t, d in items], token, mode)
    expected = feed_pb2.GetFeedResponse(
        items=[
            feed_pb2.FeedItem(task=convert.task(t), distance_meters=d if nearby else None)
            for t, d in items
        ],
        next_page_token=token,
    ).SerializeToString()
    assert assembled == expected
    parsed = feed_pb2.GetFeedResponse.FromString(assembled)
    assert all(item.HasField("distance_meters") == nearby for item in parsed.items)


def test_a_nearby_task_at_the_point_has_distance_zero() -> None:
    encoder = V2Pages()
    page = encoder.page([(b"", 0.0)], "", FeedMode.NEARBY)
    [item] = feed_pb2.GetFeedResponse.FromString(page).items
    assert item.HasField("distance_meters")
    assert item.distance_meters == 0.0
