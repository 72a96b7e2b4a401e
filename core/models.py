"""Rows of the realtime spine: one counter per event stream and the events it numbered."""

from django.db import models
from django.utils import timezone


class EventStream(models.Model):
    """A named stream of events (``user:5``, ``role:scheduler``, ``group:location.3``, ``session:ab12``).

    ``last_seq`` is advanced by exactly one per event inside the publishing transaction (an upsert takes the row
    lock), so sequence numbers within a stream are gap-free in committed data and clients can detect loss.
    """

    name = models.CharField(max_length=120, primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(last_seq__gte=0), name="eventstream_seq_nonneg")]

    def __str__(self) -> str:
        return f"{self.name}@{self.last_seq}"


class StreamEvent(models.Model):
    """One event as pushed to browsers; kept for the retention window so reconnecting clients can catch up.

    ``data`` holds ids and display-safe values only: the REST catch-up endpoint authorises by stream, so nothing
    here may be more sensitive than what every member of the stream may see.
    """

    stream = models.CharField(max_length=120)
    seq = models.BigIntegerField()
    type = models.CharField(max_length=80)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="streamevent_stream_seq_unique"),
            models.CheckConstraint(condition=models.Q(seq__gt=0), name="streamevent_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.stream}#{self.seq} {self.type}"
