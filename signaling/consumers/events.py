"""``/ws/v1/events/``: the one realtime socket each browser tab keeps open."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from core.realtime import selectors, streams
from signaling import protocol

logger = logging.getLogger(__name__)


def _subscribe_check(user: Any, stream: str, session_key: str | None) -> int | None:
    """Authorise a group subscription; return the stream's current seq, or None when refused."""
    if not streams.may_receive(user=user, stream=stream, session_key=session_key):
        return None
    return selectors.stream_seqs(streams=[stream])[stream]


class EventsConsumer(AsyncWebsocketConsumer):
    """Delivers events of the user's streams (user, roles, session, subscribed groups) to one socket.

    Unauthenticated sockets are accepted and closed at once with 4401 (closing before accepting would turn into
    an HTTP 403 and lose the code). After joining its groups the socket sends ``hello`` with each stream's last
    sequence number, so the client can fetch anything it missed over REST before applying live events.
    """

    groups_joined: set[str]
    session_key: str | None

    async def connect(self) -> None:
        self.groups_joined = set()
        self.limiter = protocol.RateLimiter()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=protocol.CLOSE_NOT_AUTHENTICATED)
            return
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        names = streams.default_streams(user=user, session_key=self.session_key)
        # Join before reading the sequence numbers: an event racing the connect then arrives live with a seq
        # the hello already covers (the client drops it) or the next one (delivered) — never lost.
        for name in names:
            await self._join(name)
        seqs = await database_sync_to_async(selectors.stream_seqs)(streams=names)
        await self.accept()
        await self.send_json({"kind": "hello", "streams": seqs})

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections (a thread-pool round trip) before every handler. Pushed
        # events touch no database, and that hop was over half the per-delivery cost (docs/benchmarks.md).
        if message["type"] == "stream.event":
            await self.stream_event(message)
            return
        await super().dispatch(message)

    async def disconnect(self, code: int) -> None:
        for group in list(self.groups_joined):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined.clear()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.limiter.allow():
            await self.close(code=protocol.CLOSE_RATE_LIMITED)
            return
        try:
            frame = protocol.parse_client_frame(text_data, bytes_data)
        except protocol.ProtocolError as err:
            await self.send_json(err.frame())
            return
        if frame.kind == "ping":
            await self.send_json({"kind": "pong"})
        elif frame.kind == "subscribe" and frame.stream:
            seq = await database_sync_to_async(_subscribe_check)(self.scope["user"], frame.stream, self.session_key)
            if seq is None:
                await self.send_json(
                    protocol.ProtocolError("stream_forbidden", "You do not receive this stream.").frame()
                )
                return
            await self._join(frame.stream)
            await self.send_json({"kind": "subscribed", "stream": frame.stream, "seq": seq})
        elif frame.kind == "unsubscribe" and frame.stream:
            group = streams.channel_group(frame.stream)
            if group in self.groups_joined:
                await self.channel_layer.group_discard(group, self.channel_name)
                self.groups_joined.discard(group)
            await self.send_json({"kind": "unsubscribed", "stream": frame.stream})

    async def stream_event(self, message: dict[str, Any]) -> None:
        """Channel-layer handler for events pushed by ``core.realtime.services.event_publish``."""
        await self.send_json({"kind": "event", **message["event"]})
        close_code = message.get("close")
        if close_code:
            await self.close(code=int(close_code))

    async def _join(self, stream: str) -> None:
        group = streams.channel_group(stream)
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)

    async def send_json(self, content: dict[str, Any]) -> None:
        # The browser may leave while events are still queued for it: daphne's autobahn protocol then raises
        # Disconnected. websocket.disconnect follows and cleans up; the client catches up when it reconnects.
        with contextlib.suppress(Disconnected):
            await self.send(text_data=json.dumps(content, separators=(",", ":")))
