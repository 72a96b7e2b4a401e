"""``python manage.py relay``: the media relay process (docs/relay.md). One per deployment; state is in memory only,
so a restart loses every peer connection and browsers re-offer."""

import asyncio
import logging
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from signaling.relay.server import relay_run
from signaling.relay.session import Limits

logger = logging.getLogger("signaling.relay")


class Command(BaseCommand):
    help = "Run the media relay: answers offers from the telehealth.relay channel group and forwards media."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-visits",
            type=int,
            default=int(getattr(settings, "RELAY_MAX_VISITS", 20)),
            help="Visits this relay serves at once; beyond, offers are refused with `overloaded` (RELAY_MAX_VISITS).",
        )
        parser.add_argument(
            "--max-participants",
            type=int,
            default=int(getattr(settings, "RELAY_MAX_PARTICIPANTS", 8)),
            help="Participants per visit (RELAY_MAX_PARTICIPANTS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        limits = Limits(max_visits=options["max_visits"], max_participants=options["max_participants"])
        asyncio.run(self._main(limits))

    async def _main(self, limits: Limits) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await relay_run(stop=stop, limits=limits)
