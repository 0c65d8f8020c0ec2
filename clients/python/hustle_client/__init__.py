"""A Python client of the Hustle API: the generated stubs (`hustle.v2`, `hustle.v1`) on a
channel that sends the session token and request ids, and retries what the contract says is
safe to retry.

    from hustle.v2 import feed_pb2, feed_pb2_grpc
    import hustle_client

    async with hustle_client.aio_channel("localhost:50051", token=token) as channel:
        feed = feed_pb2_grpc.FeedServiceStub(channel)
        request = feed_pb2.GetFeedRequest(mode=feed_pb2.FEED_MODE_NORMAL)
        page = await feed.GetFeed(request, timeout=10)

Give every call a deadline (`timeout=`): a safe call waits for an unreachable server and
retries UNAVAILABLE until then; other calls fail at once.
"""

from hustle_client.channel import aio_channel, channel
from hustle_client.safety import (
    Retry,
    RetryPolicy,
    hustle_services,
    retries,
    retry_of,
    service_config,
)

__all__ = [
    "Retry",
    "RetryPolicy",
    "aio_channel",
    "channel",
    "hustle_services",
    "retries",
    "retry_of",
    "service_config",
]
