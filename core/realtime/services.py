"""Writes of the realtime spine. Every other app publishes through ``event_publish`` or its helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.models import EventStream, StreamEvent
from core.realtime import push
from core.realtime.streams import channel_group, group_stream, is_valid_stream, role_stream, user_stream


class InvalidStream(ValueError):
    """The stream name does not follow ``<kind>:<key>`` (see core.realtime.streams)."""


@dataclass(frozen=True)
class PublishedEvent:
    stream: str
    seq: int
    type: str
    data: dict[str, Any]
    at: datetime

    def wire(self) -> dict[str, Any]:
        """The JSON shape browsers receive, over the websocket and from the catch-up endpoint alike."""
        return {"stream": self.stream, "seq": self.seq, "type": self.type, "data": self.data, "at": self.at.isoformat()}


def event_publish(*, stream: str, type: str, data: dict[str, Any], close_code: int | None = None) -> PublishedEvent:
    """Number and store an event in the caller's transaction; push it to live sockets after commit.

    Sequence numbers are allocated by an upsert on the stream's counter row, which holds the row lock until the
    caller's transaction ends: events of one stream commit in sequence order, and a rolled-back transaction
    leaves neither an event nor a gap. ``close_code`` (4xxx) asks every socket receiving the event to close right
    after delivering it (e.g. a revoked session). ``data`` must hold only what every member of the stream may see.
    """
    if not is_valid_stream(stream):
        raise InvalidStream(stream)
    now = timezone.now()
    # No savepoint: the counter upsert and the insert stand or fall with the caller's transaction, and a savepoint
    # would cost two more round trips per event (a visit's admit publishes seven).
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO core_eventstream (name, last_seq, updated_at) VALUES (%s, 1, %s)
                ON CONFLICT (name) DO UPDATE SET last_seq = core_eventstream.last_seq + 1,
                                                 updated_at = EXCLUDED.updated_at
                RETURNING last_seq
                """,
                [stream, now],
            )
            seq = int(cursor.fetchone()[0])
        StreamEvent.objects.create(stream=stream, seq=seq, type=type, data=data, created_at=now)
        event = PublishedEvent(stream=stream, seq=seq, type=type, data=data, at=now)
        transaction.on_commit(_pusher(event, close_code))
    return event


# Several streams' events in one statement: one counter upsert per stream (in name order, the lock order every
# caller shares, so two transactions publishing to overlapping streams cannot deadlock on the counter rows) and
# the events numbered from what the upsert returned.
_PUBLISH_MANY_SQL = """
WITH wanted AS (
    SELECT stream, type, data FROM jsonb_to_recordset(%s::jsonb) AS w(stream varchar, type varchar, data jsonb)
), counters AS (
    INSERT INTO core_eventstream AS counter (name, last_seq, updated_at)
    SELECT stream, 1, %s FROM wanted ORDER BY stream
    ON CONFLICT (name) DO UPDATE SET last_seq = counter.last_seq + 1, updated_at = EXCLUDED.updated_at
    RETURNING name, last_seq
)
INSERT INTO core_streamevent (stream, seq, type, data, created_at)
SELECT wanted.stream, counters.last_seq, wanted.type, wanted.data, %s
  FROM wanted JOIN counters ON counters.name = wanted.stream
RETURNING stream, seq
"""


def _pusher(event: PublishedEvent, close_code: int | None = None) -> Callable[[], None]:
    """The after-commit push of ``event`` to its stream's live sockets."""
    message: dict[str, Any] = {"type": "stream.event", "event": event.wire()}
    if close_code is not None:
        message["close"] = close_code

    def push_event() -> None:
        push.group_send(channel_group(event.stream), message)

    return push_event


def events_publish_many(*, events: list[tuple[str, str, dict[str, Any]]]) -> list[PublishedEvent]:
    """``event_publish`` for several streams at once, ``(stream, type, data)`` each, in one round trip: same
    numbering, same transaction rules, same pushes after commit. One event per stream: a stream named twice raises
    ``ValueError`` (publish those one by one). Callers: hot paths that tell several audiences of one change (a
    booking tells the board, the practitioner and the patient)."""
    streams = [stream for stream, _type, _data in events]
    for stream in streams:
        if not is_valid_stream(stream):
            raise InvalidStream(stream)
    if len(set(streams)) != len(streams):
        raise ValueError("events_publish_many takes one event per stream")
    if not events:
        return []
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(
                _PUBLISH_MANY_SQL,
                [json.dumps([{"stream": s, "type": t, "data": d} for s, t, d in events]), now, now],
            )
            seqs = dict(cursor.fetchall())
        published = [
            PublishedEvent(stream=stream, seq=int(seqs[stream]), type=type_, data=data, at=now)
            for stream, type_, data in events
        ]
        for event in published:
            transaction.on_commit(_pusher(event))
    return published


def publish_to_user(
    *, user_id: object, type: str, data: dict[str, Any], close_code: int | None = None
) -> PublishedEvent:
    return event_publish(stream=user_stream(user_id), type=type, data=data, close_code=close_code)


def publish_to_role(*, role: str, type: str, data: dict[str, Any]) -> PublishedEvent:
    return event_publish(stream=role_stream(role), type=type, data=data)


def publish_to_group(*, name: str, type: str, data: dict[str, Any]) -> PublishedEvent:
    return event_publish(stream=group_stream(name), type=type, data=data)


def stream_events_prune(*, now: datetime | None = None) -> int:
    """Delete events past the retention window, and streams idle for as long (their numbering restarts at 1;
    clients treat a server sequence lower than theirs as a reset)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.REALTIME_EVENT_RETENTION_DAYS)
    with transaction.atomic():
        deleted, _ = StreamEvent.objects.filter(created_at__lt=cutoff).delete()
        EventStream.objects.filter(updated_at__lt=cutoff).delete()
    return deleted
