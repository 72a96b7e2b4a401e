"""The media relay (issue 7): its own process (``python manage.py relay``) that answers each browser's offers and
forwards every participant's encoded audio and video to the others of its visit. Design: docs/relay.md."""
