"""ASGI entry point: HTTP goes to Django; websockets pass origin validation, then session auth, then the router."""

import gc
import os
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections
from django.http import HttpResponseBase
from django.urls import set_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Django must be set up before anything imports models (the websocket stack below does).
django.setup(set_prefix=False)


class SyncMiddlewareASGIHandler(ASGIHandler):
    """Django's ASGI handler, with each request's sync work done in one thread hop on a shared pool.

    Every view we serve is sync, and so is WhiteNoise. Stock Django enters a ``ThreadSensitiveContext`` per request
    (a new executor and thread each time) and hops to it for the ``request_started`` signal, for the middleware
    chain, for logging a 4xx/5xx and for ``response.close()``; in its async build each ``MiddlewareMixin`` adds hops
    of its own. Here the middleware chain is built in sync mode, and the signal, the request, the chain (Django's
    sync ``get_response``, which logs) and the close run together in one call on the event loop's thread pool, whose
    threads are reused: all of a request's sync code still runs in one thread, as thread-sensitive code requires.
    Measured through daphne, a CSRF GET costs 2.6 ms of server CPU instead of 4.0 (daphne itself, answering from a
    bare ASGI app, 0.55 ms; docs/benchmarks.md, scheduling).

    Streaming responses (WhiteNoise's files) are sent and closed the stock way: their iterator runs per chunk.
    Request and response I/O stay on the event loop; websockets are unchanged."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django serves only HTTP here, not {scope['type']}")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self._respond, thread_sensitive=False)(scope, body_file)
            await self.send_response(response, send)
            if response.streaming:
                await sync_to_async(response.close, thread_sensitive=False)()
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """Everything sync for one request, in the calling thread; a non-streaming response comes back closed
        (``request_finished`` has run: the database connection is back in its pool)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        assert response is not None
        if response.streaming:
            # Its close (and request_finished) runs after the last chunk, maybe in another of the pool's threads:
            # this thread's database connection goes back to the pool now, as request_finished would return it.
            close_old_connections()
        else:
            response.close()
        return response


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

# Everything loaded by now (Django, the apps, the URL and model registries: some 140,000 objects) lives as long as
# the process. Left to the collector, each full collection re-scans all of it, about 95 ms on this project's
# 2-core reference machine, stalling every request in flight; frozen, it is skipped (docs/benchmarks.md,
# scheduling: the race's loser p99 200 -> 145 ms).
gc.freeze()
