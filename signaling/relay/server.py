"""The relay process around ``Relay``: the ``telehealth.relay`` channel-layer group, ICE servers from settings,
the Redis heartbeat, telemetry to telehealth, and shutdown. Started by ``python manage.py relay``; tests may run a
``RelayServer`` in their own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import Any

import redis.asyncio as aioredis
from aiortc import RTCIceServer
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from signaling.relay import hooks
from signaling.relay import protocol as rp
from signaling.relay.session import Limits, Relay
from telehealth.channels import RELAY_GROUP
from telehealth.services.ice import turn_credential
from telehealth.services.relay import RelayTokenInvalid, relay_token_verify

logger = logging.getLogger(__name__)

HEARTBEAT_TTL_S = 15
HEARTBEAT_INTERVAL_S = 5.0
REPORT_INTERVAL_S = 10.0
# The relay's own TURN credentials: a long-lived server, so they outlive any visit (browsers get short ones).
RELAY_TURN_TTL_S = 24 * 3600
VISIT_RELAY = "visit.relay"


def relay_heartbeat_key() -> str:
    """``<cache key prefix>:relay:heartbeat`` (the prefix of the project's other Redis keys, core/workers.py)."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'consulta')}:relay:heartbeat"


def relay_ice_servers() -> list[RTCIceServer]:
    """STUN and TURN from settings, with TURN REST credentials made like telehealth's (never a public default)."""
    servers: list[RTCIceServer] = []
    if settings.STUN_URLS:
        servers.append(RTCIceServer(urls=list(settings.STUN_URLS)))
    if settings.TURN_URLS:
        username = f"{int(time.time()) + RELAY_TURN_TTL_S}:relay"
        servers.append(
            RTCIceServer(
                urls=list(settings.TURN_URLS),
                username=username,
                credential=turn_credential(secret=settings.TURN_SECRET, username=username),
            )
        )
    return servers


def _verify(message: dict[str, Any]) -> tuple[str, str] | None:
    try:
        return relay_token_verify(token=message.get("token"))
    except RelayTokenInvalid:
        return None


def _report_service() -> Any:
    try:
        from telehealth.services import visit_relay_report  # type: ignore[attr-defined]
    except ImportError:
        return None
    return visit_relay_report


class RelayServer:
    """One relay on the default channel layer. ``start()`` joins the group and starts the loops; ``stop()`` closes
    every peer connection, leaves the group and removes the heartbeat."""

    def __init__(self, *, limits: Limits | None = None) -> None:
        hooks.check_compatible()
        # aioice and aiortc log candidate pairs (IP addresses) and SDP at INFO/DEBUG: never let them through.
        for name in ("aioice", "aiortc"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.layer = get_channel_layer()
        self.channel = ""
        self.relay = Relay(send=self._send, ice_servers=relay_ice_servers, report=self._report, limits=limits)
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: aioredis.Redis | None = None
        self._report_fn = _report_service()
        self._report_warned = False

    async def start(self) -> None:
        self.channel = await self.layer.new_channel(prefix="relay.")
        await self.layer.group_add(RELAY_GROUP, self.channel)
        self._redis = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
        await self._beat()
        self._tasks = [
            asyncio.ensure_future(self._receive_loop()),
            asyncio.ensure_future(self._every(HEARTBEAT_INTERVAL_S, self._beat)),
            asyncio.ensure_future(self._every(REPORT_INTERVAL_S, self.relay.report_all)),
        ]
        logger.info("relay: started (pid %s)", os.getpid())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.relay.close()
        with contextlib.suppress(Exception):
            await self.layer.group_discard(RELAY_GROUP, self.channel)
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.delete(relay_heartbeat_key())
            await self._redis.aclose()
        logger.info("relay: stopped")

    # --- loops ----------------------------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            try:
                await self._dispatch(message)
            except Exception:
                logger.exception("relay: message failed: type=%s", str(message.get("type"))[:40])

    async def _dispatch(self, message: dict[str, Any]) -> None:
        type_ = message.get("type")
        if type_ == "relay.signal":
            await self.relay.handle_signal(message, _verify(message))
            return
        visit_id = rp.canonical_uuid(message.get("visit_id"))
        participant_id = message.get("participant_id")
        if visit_id is None:
            return
        if type_ == "relay.visit_end":
            await self.relay.visit_end(visit_id=visit_id)
        elif not isinstance(participant_id, str) or not rp.PARTICIPANT_RE.fullmatch(participant_id):
            return
        elif type_ == "relay.participant_mute":
            await self.relay.participant_mute(
                visit_id=visit_id, participant_id=participant_id, audio=bool(message.get("audio"))
            )
        elif type_ == "relay.participant_remove":
            await self.relay.participant_remove(visit_id=visit_id, participant_id=participant_id)

    async def _every(self, interval: float, job: Any) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except Exception:
                logger.warning("relay: periodic job failed", exc_info=True)

    async def _beat(self) -> None:
        assert self._redis is not None
        value = json.dumps({"pid": os.getpid(), "at": time.time(), **self.relay.counts()})
        await self._redis.set(relay_heartbeat_key(), value, ex=HEARTBEAT_TTL_S)

    # --- outputs --------------------------------------------------------------------------------------------------

    async def _send(self, inbox: str, frame: dict[str, Any]) -> None:
        await self.layer.group_send(inbox, {"type": VISIT_RELAY, "sender": self.channel, "text": rp.dumps(frame)})

    async def _report(self, visit_id: str, participant_id: str, report: dict[str, Any]) -> None:
        if self._report_fn is None:
            self._report_fn = _report_service()
            if self._report_fn is None:
                if not self._report_warned:
                    self._report_warned = True
                    logger.warning("relay: telehealth.services.visit_relay_report is missing; telemetry dropped")
                return
        try:
            await database_sync_to_async(self._report_fn)(
                visit_id=visit_id, participant_id=participant_id, report=report
            )
        except Exception as exc:
            logger.warning(
                "relay: telemetry refused: visit=%s participant=%s (%s)", visit_id, participant_id, type(exc).__name__
            )


async def relay_run(*, stop: asyncio.Event, limits: Limits | None = None) -> None:
    """Run a relay until ``stop`` is set (the management command sets it on SIGTERM/SIGINT)."""
    server = RelayServer(limits=limits)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()
