"""``GET /api/v1/realtime/events/``: the catch-up read a client makes when it detects a gap in a stream."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError
from core.realtime import selectors, streams


class StreamEventSerializer(serializers.Serializer[object]):
    stream = serializers.CharField()
    seq = serializers.IntegerField()
    type = serializers.CharField()
    data = serializers.DictField()  # type: ignore[assignment]  # the event payload, not Serializer.data
    at = serializers.DateTimeField()


class StreamEventPageSerializer(serializers.Serializer[object]):
    stream = serializers.CharField()
    last_seq = serializers.IntegerField()
    events = StreamEventSerializer(many=True)


class StreamEventQuerySerializer(serializers.Serializer[object]):
    stream = serializers.CharField(max_length=120)
    after = serializers.IntegerField(min_value=0, default=0)


class StreamEventListApi(APIView):
    """Events of one stream after a sequence number, for a stream the signed-in session receives."""

    @extend_schema(parameters=[StreamEventQuerySerializer], responses=StreamEventPageSerializer)
    def get(self, request: Request) -> Response:
        query = StreamEventQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        stream: str = query.validated_data["stream"]
        after: int = query.validated_data["after"]
        user: streams.StreamUser = request.user  # type: ignore[assignment]  # authenticated: an ehr User
        if not streams.may_receive(user=user, stream=stream, session_key=request.session.session_key):
            raise ApiError("stream_forbidden", "You do not receive this stream.", status_code=403)
        events = selectors.stream_events_after(stream=stream, after=after)
        last_seq = selectors.stream_seqs(streams=[stream])[stream]
        return Response({"stream": stream, "last_seq": last_seq, "events": [e.wire() for e in events]})
