"""ASGI entry point: HTTP goes to Django; websockets pass origin validation, then session auth, then the router."""

import os
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Django must be set up before anything imports models (the websocket stack below does).
django.setup(set_prefix=False)


class SyncMiddlewareASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware chain built in sync mode and entered with one thread hop.

    Every view we serve is sync, and so is WhiteNoise; in the stock async build each ``MiddlewareMixin`` middleware
    then runs its hooks through ``sync_to_async`` (a thread round trip each) and WhiteNoise adds an
    ``async_to_sync``/``sync_to_async`` pair: about a dozen hops per request. Measured through daphne: 3-3.5 ms of
    CPU less per request (a CSRF GET 8.8-10.6 -> 5.7-6.4 ms; docs/benchmarks.md, scheduling). Request and response
    I/O, the request signals and websockets are unchanged (an async view, were there one, would still run)."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        chain: Any = getattr(self, "_middleware_chain")  # noqa: B009 -- not in the stubs
        self._middleware_chain = sync_to_async(chain, thread_sensitive=True)


django_asgi_app = SyncMiddlewareASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402 -- needs the app registry loaded above
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from signaling.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
