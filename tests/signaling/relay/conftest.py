"""The relay in this test's event loop, on the real Redis channel layer, with host candidates only (192.0.2.2 on
this machine: aioice skips loopback) unless a test gives it coturn."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from signaling.relay.server import RelayServer
from signaling.relay.session import Limits


@pytest.fixture
def no_ice_servers(settings):  # type: ignore[no-untyped-def]
    settings.STUN_URLS = []
    settings.TURN_URLS = []


@pytest.fixture
async def relay(no_ice_servers) -> AsyncIterator[RelayServer]:  # type: ignore[no-untyped-def]
    server = RelayServer(limits=Limits(max_visits=3, max_participants=4))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def visit_id() -> str:
    return str(uuid.uuid4())
