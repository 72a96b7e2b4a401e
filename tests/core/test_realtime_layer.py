"""The bounded channel layer: inboxes never grow past their capacity and drop the oldest message first."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer

from core.realtime.layer import DropOldestQueue


def test_drop_oldest_queue_keeps_the_newest_items() -> None:
    queue = DropOldestQueue(maxsize=3)
    for i in range(5):
        queue.put_nowait(i)
    assert queue.qsize() == 3
    assert [queue.get_nowait() for _ in range(3)] == [2, 3, 4]
    assert queue.dropped == 2


@pytest.mark.asyncio
async def test_configured_layer_gives_every_consumer_a_bounded_inbox(settings) -> None:  # type: ignore[no-untyped-def]
    layer = get_channel_layer()
    channel = await layer.new_channel()
    inbox = layer._get_layer().channels[channel]
    assert isinstance(inbox, DropOldestQueue)
    assert inbox.maxsize == settings.CHANNEL_LAYERS["default"]["CONFIG"]["capacity"] > 0
