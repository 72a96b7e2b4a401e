"""Delivery of committed events to the channel layer from synchronous code.

Services run in sync threads (views under daphne, Celery workers). Calling the layer through ``async_to_sync``
would build a new event loop, and with it a new Redis connection, for every event. Instead one daemon thread per
process owns a loop and the layer's connections; callers hand it coroutines and wait briefly for the result,
which also keeps the events one thread publishes in order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Future
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None

PUSH_TIMEOUT_S = 2.0


def _publisher_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        # After a fork (Celery prefork) the parent's thread does not exist in the child: start a new one.
        if _loop is None or _loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="realtime-publisher", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def group_send(group: str, message: dict[str, Any]) -> bool:
    """Send ``message`` to a channel-layer group; returns False (and logs) if the layer is unreachable.

    Failure is not fatal: the event is already committed in PostgreSQL, and clients recover it through the
    sequence-number catch-up.
    """
    layer = get_channel_layer()
    if layer is None:
        return False
    future: Future[None] = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _publisher_loop())
    try:
        future.result(timeout=PUSH_TIMEOUT_S)
    except Exception:
        logger.warning("realtime push to group %s failed; clients will catch up over REST", group, exc_info=True)
        future.cancel()
        return False
    return True
