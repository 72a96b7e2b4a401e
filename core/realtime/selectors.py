"""Reads of the realtime spine."""

from __future__ import annotations

from collections.abc import Iterable

from core.models import EventStream, StreamEvent
from core.realtime.services import PublishedEvent

CATCH_UP_PAGE = 500


def stream_seqs(*, streams: Iterable[str]) -> dict[str, int]:
    """Current last sequence number of each stream (0 for a stream that has never had an event)."""
    names = list(streams)
    found = dict(EventStream.objects.filter(name__in=names).values_list("name", "last_seq"))
    return {name: int(found.get(name, 0)) for name in names}


def stream_events_after(*, stream: str, after: int, limit: int = CATCH_UP_PAGE) -> list[PublishedEvent]:
    """Events of ``stream`` with ``seq > after`` in order, at most ``limit`` (callers page by the last seq)."""
    rows = StreamEvent.objects.filter(stream=stream, seq__gt=after).order_by("seq")[:limit]
    return [PublishedEvent(stream=r.stream, seq=r.seq, type=r.type, data=r.data, at=r.created_at) for r in rows]
