from django.urls import path

from signaling.consumers.events import EventsConsumer
from signaling.consumers.visit import VisitSignalingConsumer

websocket_urlpatterns = [
    path("ws/v1/events/", EventsConsumer.as_asgi()),
    # Any segment, not only uuids: a malformed visit id must reach the consumer to be refused with 4403.
    path("ws/v1/visits/<str:visit_id>/", VisitSignalingConsumer.as_asgi()),
]
