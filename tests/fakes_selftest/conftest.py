"""Fixtures for the fakes' self-tests: a webhook sink standing in for our app's Twilio endpoints."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.fakes._admin import QuietServer
from tests.fakes.twilio_server import FakeTwilio

SID = "AC" + "ab" * 16
TOKEN = "selftest-auth-token"


@dataclass
class Hook:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


class WebhookSink:
    """An HTTP server that records every POST (path, form params, headers) and answers ``reply`` (TwiML)."""

    reply = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks</Message></Response>'

    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                hook = Hook(self.path, dict(urllib.parse.parse_qsl(raw, keep_blank_values=True)), dict(self.headers))
                with sink.lock:
                    sink.hooks.append(hook)
                data = sink.reply.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def full_url(self, hook: Hook) -> str:
        return self.url(hook.path)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    s = WebhookSink()
    yield s
    s.stop()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(account_sid=SID, auth_token=TOKEN).start()
    yield fake
    fake.stop()
