"""The realtime spine: services publish numbered events to streams; browsers receive them over one websocket.

Public surface for other apps: ``core.realtime.services`` (``event_publish`` and the ``publish_to_*`` helpers),
``core.realtime.streams`` (stream names, group authorisers) and ``core.realtime.selectors``. See docs/realtime.md.
"""
