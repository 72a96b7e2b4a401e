from django.apps import AppConfig


class SignalingConfig(AppConfig):
    """Websocket consumers and their wire protocols. No models."""

    name = "signaling"
