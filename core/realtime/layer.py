"""The channel layer: channels-redis's pub/sub layer with a bounded inbox per consumer.

The stock layer gives every consumer an unbounded ``asyncio.Queue``; a slow socket under sustained load then
grows daphne's memory and latency without limit (measured in docs/benchmarks.md). Here each inbox holds at most
``capacity`` messages and drops the *oldest* when full. Dropping is safe for what travels on the layer: every
pushed event carries a per-stream sequence number, so the client sees the gap and fetches the missing events over
REST (docs/realtime.md). Written against channels-redis 4.3 (pinned in requirements/base.txt).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = 200


class DropOldestQueue(asyncio.Queue[Any]):
    """A queue that never blocks or fails a producer: when full it discards its oldest item."""

    dropped = 0

    def put_nowait(self, item: Any) -> None:
        if self.maxsize > 0 and self.qsize() >= self.maxsize:
            self.get_nowait()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                logger.warning("realtime inbox full: dropped %d oldest message(s); clients will catch up", self.dropped)
        super().put_nowait(item)


class _BoundedLoopLayer(RedisPubSubLoopLayer):  # type: ignore[misc]
    def __init__(self, *args: Any, capacity: int = DEFAULT_CAPACITY, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.capacity = capacity

    async def _subscribe_to_channel(self, channel: str) -> None:
        # As the parent does, with a bounded inbox in place of asyncio.Queue() (set before subscribing, so no
        # message can arrive for a channel without one).
        self.channels[channel] = DropOldestQueue(maxsize=self.capacity)
        await self._get_shard(channel).subscribe(channel)


class BoundedRedisPubSubChannelLayer(RedisPubSubChannelLayer):  # type: ignore[misc]
    """``RedisPubSubChannelLayer`` whose per-consumer inboxes hold at most ``capacity`` messages."""

    def _get_layer(self) -> Any:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            from channels_redis.utils import _wrap_close

            layer = _BoundedLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer
