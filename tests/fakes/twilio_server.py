"""A local Twilio: the REST endpoints the ``twilio`` SDK calls for Messages and Calls, plus signed webhooks back.

Endpoints (all under ``/2010-04-01/Accounts/{AccountSid}/``, HTTP Basic auth ``AccountSid:AuthToken`` checked):

- ``POST Messages.json`` (form: To, From or MessagingServiceSid, Body, StatusCallback, ...) -> 201 + message JSON
  shaped like Twilio's (``sid`` "SM" + 32 hex, ``status`` "queued", RFC 2822 dates, ``uri``, ``subresource_uris``).
- ``GET Messages.json`` with ``To``, ``From``, ``DateSent``, ``DateSent<``, ``DateSent>`` filters and Twilio's
  paging shape (``messages``, ``page``, ``page_size``, ``first_page_uri``, ``next_page_uri``, ...), newest first.
- ``GET Messages/{Sid}.json``; ``POST Calls.json`` (To, From, Url/Twiml/ApplicationSid) and ``GET Calls/{Sid}.json``.
- Failures answer Twilio's error JSON ``{"code", "message", "more_info", "status"}`` with the HTTP status.

After accepting a message it walks the message through ``queued -> sent -> delivered`` (or ``-> undelivered`` /
``failed`` with an ``ErrorCode``) and POSTs each status to the ``StatusCallback`` URL, form-encoded, signed the way
Twilio signs (``X-Twilio-Signature`` = base64 HMAC-SHA1, keyed by the auth token, of the full URL followed by every
POST parameter's name and value in name order). Callbacks start after the 201 was written; each message's callbacks
go out in order; callbacks are not retried (Twilio does not retry status callbacks either).

Pointing the real SDK here (what ``TWILIO_API_BASE`` means): build the client as usual and replace the base URL of
its ``api`` domain, which is where every v2010 resource (Messages, Calls) builds its URLs, including the next-page
links of lists. See :func:`twilio_client`::

    client = Client(sid, token, http_client=TwilioHttpClient(timeout=10))
    client.api.base_url = "http://127.0.0.1:8025"     # default "https://api.twilio.com"
    client.edge = client.region = None                  # TWILIO_EDGE/TWILIO_REGION would rewrite the host name

Use in a test (in-thread)::

    fake = FakeTwilio(account_sid=SID, auth_token=TOKEN).start()
    ...point settings.TWILIO_API_BASE at fake.base_url...
    fake.fail_next(2, status=503); fake.undeliver_next(1, error_code=30005); fake.down(); fake.up()
    fake.wait_until(lambda: fake.count_key(key) == 1, timeout=10)
    fake.stop()

Or as a process: ``python -m tests.fakes.twilio_server --port P --account-sid AC... --auth-token T --state-file F``;
see :class:`FakeTwilioProcess` and the ``/_fake/`` admin API in :func:`admin_routes`.

Exactly-once checks: every accepted message is counted by ``(To, Body)`` and by idempotency key. The key is read
from the ``StatusCallback`` URL's query parameter ``key_param`` (default ``idempotency_key``) or, failing that,
from an ``Idempotency-Key`` request header. Rejected attempts (errors, down, dropped slow requests) are not messages;
they are counted in ``create_requests`` by outcome.

Known differences from Twilio: no Messaging Services behaviour beyond echoing the SID, no media, segments counted
naively (153 characters each), the DateSent filters fall back to ``date_created`` for messages not yet sent (Twilio
leaves ``date_sent`` null until sent; ours move to ``sent`` immediately unless callbacks are slowed).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import re
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.fakes._admin import (
    AdminRoutes,
    FakeProcess,
    QuietServer,
    first_words,
    mask,
    parse_query,
    say,
    serve_until_signalled,
    write_json,
)

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"
DEFAULT_FROM_NUMBER = "+15005550006"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# Twilio's wording for the codes the fake produces (https://www.twilio.com/docs/api/errors).
ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service is unavailable. Please try again",
    21205: "Url parameter is required.",
    21211: "Invalid 'To' Phone Number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}


def error_body(status: int, code: int, message: str | None = None) -> dict[str, Any]:
    """Twilio's (legacy, non RFC 9457) error JSON, which the SDK turns into ``TwilioRestException(status, code)``."""
    return {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def signature(auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """``X-Twilio-Signature`` for a form POST to ``url``: base64(HMAC-SHA1(token, url + name1 + value1 + ...)).

    Names in sorted order; a repeated name contributes each of its values, sorted.
    """
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    payload = url
    for name in sorted({n for n, _ in pairs}):
        for value in sorted({v for n, v in pairs if n == name}):
            payload += name + value
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_client(base_url: str, account_sid: str, auth_token: str, *, timeout: float = 10.0) -> Any:
    """The real ``twilio.rest.Client`` talking to ``base_url`` (a fake) instead of https://api.twilio.com.

    This is the supported way: ``Client(..., http_client=TwilioHttpClient(timeout=...))`` and
    ``client.api.base_url = base_url``. ``edge``/``region`` are cleared because the SDK would otherwise rewrite the
    host name (``api.<edge>.<region>.twilio.com``) when TWILIO_EDGE/TWILIO_REGION are in the environment.
    """
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
    client.edge = None
    client.region = None
    if base_url:
        client.api.base_url = base_url.rstrip("/")
    return client


def rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment.astimezone(UTC)) if moment is not None else None


def _now() -> datetime:
    return datetime.now(UTC)


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


@dataclass
class _Failure:
    status: int
    code: int
    message: str | None


@dataclass
class _Slow:
    seconds: float
    remaining: int | None
    accept: bool


@dataclass
class _Outcome:
    final: str  # "delivered" | "undelivered" | "failed"
    error_code: int | None


@dataclass
class InboundDelivery:
    """What happened when the fake delivered an inbound SMS webhook."""

    sid: str
    url: str
    params: dict[str, str]
    signature: str
    status: int | None
    content_type: str | None
    body: str
    error: str | None = None


@dataclass
class _Record:
    kind: str  # "message" | "call"
    sid: str
    to: str
    from_: str
    body: str
    status: str
    params: dict[str, str]
    status_callback: str | None
    key: str | None
    date_created: datetime
    date_updated: datetime
    date_sent: datetime | None = None
    error_code: int | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)


class FakeTwilio:
    """A Twilio REST API on 127.0.0.1 in a thread of this process. Thread-safe; all methods may be called any time.

    Inspection: :attr:`messages`, :attr:`calls`, :attr:`inbound`, :attr:`callbacks` (lists of dicts, copies),
    :meth:`count`, :meth:`count_key`, :meth:`counts`, :meth:`duplicates`, :attr:`create_requests`.
    Control: :meth:`fail_next`, :meth:`down`, :meth:`up`, :meth:`slow`, :meth:`undeliver_next`, :meth:`block`,
    :meth:`send_inbound`, :meth:`reset`. Waiting: :meth:`wait_until`, :meth:`wait_callbacks`.
    """

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        port: int = 0,
        statuses: tuple[str, ...] = ("queued", "sent", "delivered"),
        callback_interval: float = 0.0,
        callback_workers: int = 4,
        key_param: str = "idempotency_key",
        default_to: str = DEFAULT_FROM_NUMBER,
        on_message: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.statuses = statuses
        self.callback_interval = callback_interval
        self.key_param = key_param
        self.default_to = default_to
        self.on_message = on_message
        self._requested_port = port
        self._port = 0
        self._callback_workers = callback_workers
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._listeners: list[Callable[[], None]] = []
        self._clear()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def _clear(self) -> None:
        self._records: dict[str, _Record] = {}
        self._order: list[str] = []  # sids of messages and calls, oldest first
        self._inbound: list[dict[str, Any]] = []
        self._callbacks: list[dict[str, Any]] = []
        self._by_to_body: Counter[tuple[str, str]] = Counter()
        self._by_key: Counter[str] = Counter()
        self._create_requests: Counter[str] = Counter()
        self._failures: list[_Failure] = []
        self._outcomes: list[_Outcome] = []
        self._slow: _Slow | None = None
        self._blocked: set[str] = set()
        self._mode = "up"  # "up" | "refuse" | "reset" | "503"
        self._pending_sequences = 0
        self._generation = getattr(self, "_generation", 0) + 1

    def start(self) -> FakeTwilio:
        """Listen on 127.0.0.1 (``port`` 0 picks a free one, kept across :meth:`down`/:meth:`up`)."""
        self._executor = ThreadPoolExecutor(max_workers=self._callback_workers, thread_name_prefix="fake-twilio-cb")
        self._listen(self._requested_port)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._close_listener()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """What ``TWILIO_API_BASE`` should be set to."""
        return f"http://127.0.0.1:{self._port}"

    def client(self, *, timeout: float = 10.0) -> Any:
        """The real SDK client pointed at this fake with its credentials (see :func:`twilio_client`)."""
        return twilio_client(self.base_url, self.account_sid, self.auth_token, timeout=timeout)

    def _listen(self, port: int) -> None:
        fake = self

        class Handler(_ApiHandler):
            pass

        Handler.fake = fake
        server = _ResettingServer(("127.0.0.1", port), Handler)
        server.fake = fake
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, name="fake-twilio", daemon=True)
        self._thread.start()

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # -- control -----------------------------------------------------------------------------------------------

    def fail_next(
        self, n: int = 1, *, status: int | None = None, code: int | None = None, message: str | None = None
    ) -> None:
        """The next ``n`` create requests (Messages or Calls) answer an error and send nothing.

        Default 503 / code 20503. ``code`` alone picks the status: 20xxx codes map to HTTP xxx (20429 -> 429),
        others (21610 unsubscribed, 21211 invalid number, 30003, ...) to 400. ``status`` alone picks code 20000+status.
        """
        if status is None:
            status = (code - 20000) if code is not None and 20400 <= code < 20600 else (400 if code else 503)
        if code is None:
            code = 20000 + status if 400 <= status < 600 else 20500
        with self._lock:
            self._failures.extend(_Failure(status, code, message) for _ in range(n))
        self._touch()

    def undeliver_next(self, n: int = 1, *, error_code: int = 30005, status: str = "undelivered") -> None:
        """The next ``n`` accepted messages end ``undelivered`` (queued -> sent -> undelivered) or, with
        ``status="failed"``, ``failed`` (queued -> failed), carrying ``ErrorCode`` in the callback and the resource."""
        if status not in ("undelivered", "failed"):
            raise ValueError("status must be 'undelivered' or 'failed'")
        with self._lock:
            self._outcomes.extend(_Outcome(status, error_code) for _ in range(n))
        self._touch()

    def down(self, mode: str = "refuse") -> None:
        """Take the API down. ``refuse``: close the listening socket (connection refused); ``reset``: accept and
        reset every connection; ``503``: answer every API request 503 / 20503. Admin paths stay up in ``reset``/``503``.
        """
        if mode not in ("refuse", "reset", "503"):
            raise ValueError("mode must be 'refuse', 'reset' or '503'")
        with self._lock:
            previous, self._mode = self._mode, mode
        if mode == "refuse" and previous != "refuse":
            self._close_listener()
        elif mode != "refuse" and previous == "refuse":
            self._listen(self._port)
        self._touch()

    def up(self) -> None:
        """Serve normally again, on the same port."""
        with self._lock:
            previous, self._mode = self._mode, "up"
        if previous == "refuse":
            self._listen(self._port)
        self._touch()

    def slow(self, seconds: float, *, n: int | None = None, accept: bool = False) -> None:
        """Delay the answer to the next ``n`` create requests (all, if None) by ``seconds``; ``seconds=0`` ends it.

        ``accept=False``: nothing is sent; after the delay the request answers 503 (a client that timed out sees a
        timeout, and no message exists). ``accept=True``: the message is accepted, recorded and its callbacks start
        at once, only the answer is late -- the ambiguous case where a client that timed out did cause a send.
        """
        with self._lock:
            self._slow = _Slow(seconds, n, accept) if seconds > 0 else None
        self._touch()

    def block(self, number: str) -> None:
        """Messages to ``number`` answer 400 / 21610 (unsubscribed recipient), as after the handset texted STOP."""
        with self._lock:
            self._blocked.add(number)

    def unblock(self, number: str) -> None:
        with self._lock:
            self._blocked.discard(number)

    def reset(self) -> None:
        """Forget everything received and every armed failure; back up; pending callbacks are abandoned."""
        with self._lock:
            mode = self._mode
            self._clear()
        if mode == "refuse":
            self._listen(self._port)
        self._touch()

    def send_inbound(
        self, url: str, from_: str, body: str, *, to: str | None = None, timeout: float = 15
    ) -> InboundDelivery:
        """POST a signed inbound-SMS webhook to ``url`` as Twilio does when a handset texts ``to``; returns the reply.

        Connection errors are reported in ``InboundDelivery.error`` (status None), not raised.
        """
        sid = _sid("SM")
        to = to or self.default_to
        params = {
            "ToCountry": "US",
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": "US",
            "To": to,
            "ToZip": "",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
        }
        sent = self._post_webhook(url, params, timeout=timeout)
        delivery = InboundDelivery(
            sid=sid,
            url=url,
            params=params,
            signature=sent["signature"],
            status=sent["status"],
            content_type=sent["content_type"],
            body=sent["response_body"],
            error=sent["error"],
        )
        with self._lock:
            self._inbound.append(
                {"sid": sid, "from": from_, "to": to, "body": body, "url": url, "status": sent["status"]}
            )
        self._touch()
        return delivery

    # -- inspection --------------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages, oldest first: Twilio's JSON plus ``status_callback``, ``idempotency_key``, ``params``."""
        with self._lock:
            return [self._debug_json(r) for r in self._iter("message")]

    @property
    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._debug_json(r) for r in self._iter("call")]

    @property
    def inbound(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(i) for i in self._inbound]

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Every status callback POSTed: ``url``, ``params``, ``signature``, ``status`` (HTTP, or None), ``error``."""
        with self._lock:
            return [dict(c) for c in self._callbacks]

    @property
    def create_requests(self) -> dict[str, int]:
        """Create requests received by outcome: ``accepted``, ``error``, ``dropped`` (slow, not accepted), ``down``."""
        with self._lock:
            return dict(self._create_requests)

    def count(self, to: str, body: str) -> int:
        """How many accepted messages had exactly this To and Body."""
        with self._lock:
            return self._by_to_body[(to, body)]

    def count_key(self, key: str) -> int:
        """How many accepted messages carried this idempotency key."""
        with self._lock:
            return self._by_key[key]

    def counts(self) -> dict[str, Any]:
        """``{"messages": n, "by_key": {key: n}, "by_to_body": [{"to", "body", "count"}]}``."""
        with self._lock:
            return {
                "messages": sum(1 for _ in self._iter("message")),
                "by_key": dict(self._by_key),
                "by_to_body": [{"to": t, "body": b, "count": c} for (t, b), c in self._by_to_body.items()],
            }

    def duplicates(self) -> dict[str, Any]:
        """Keys and (To, Body) pairs received more than once: ``{"by_key": {...}, "by_to_body": [...]}``."""
        with self._lock:
            return {
                "by_key": {k: c for k, c in self._by_key.items() if c > 1},
                "by_to_body": [{"to": t, "body": b, "count": c} for (t, b), c in self._by_to_body.items() if c > 1],
            }

    def wait_until(self, condition: Callable[[], bool], *, timeout: float = 10, what: str = "condition") -> None:
        """Block until ``condition()`` holds (re-checked whenever the fake's state changes); TimeoutError after."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake Twilio: timed out after {timeout}s waiting for {what}")
                self._changed.wait(min(remaining, 0.2))

    def wait_callbacks(self, timeout: float = 10) -> None:
        """Block until every status-callback sequence started so far has finished."""
        self.wait_until(lambda: self._pending_sequences == 0, timeout=timeout, what="status callbacks")

    def snapshot(self) -> dict[str, Any]:
        """What process mode mirrors to its state file."""
        with self._lock:
            counts = self.counts()
            return {
                "ready": True,
                "port": self._port,
                "base_url": self.base_url,
                "mode": self._mode,
                "messages": counts["messages"],
                "calls": sum(1 for _ in self._iter("call")),
                "inbound": len(self._inbound),
                "callbacks": len(self._callbacks),
                "create_requests": dict(self._create_requests),
                "by_key": counts["by_key"],
                "by_to_body": counts["by_to_body"],
                "duplicates": self.duplicates(),
            }

    # -- internals ---------------------------------------------------------------------------------------------

    def _iter(self, kind: str) -> Iterable[_Record]:
        return (self._records[s] for s in self._order if self._records[s].kind == kind)

    def _touch(self) -> None:
        with self._changed:
            self._changed.notify_all()
        for listener in list(self._listeners):
            listener()

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(password, self.auth_token)

    def _api_json(self, record: _Record) -> dict[str, Any]:
        base = f"/{API_VERSION}/Accounts/{self.account_sid}"
        if record.kind == "call":
            return {
                "account_sid": self.account_sid,
                "annotation": None,
                "answered_by": None,
                "api_version": API_VERSION,
                "caller_name": None,
                "date_created": rfc2822(record.date_created),
                "date_updated": rfc2822(record.date_updated),
                "direction": "outbound-api",
                "duration": None,
                "end_time": None,
                "forwarded_from": None,
                "from": record.from_,
                "from_formatted": record.from_,
                "group_sid": None,
                "parent_call_sid": None,
                "phone_number_sid": None,
                "price": None,
                "price_unit": "USD",
                "queue_time": "0",
                "sid": record.sid,
                "start_time": None,
                "status": record.status,
                "subresource_uris": {
                    "notifications": f"{base}/Calls/{record.sid}/Notifications.json",
                    "recordings": f"{base}/Calls/{record.sid}/Recordings.json",
                },
                "to": record.to,
                "to_formatted": record.to,
                "trunk_sid": None,
                "uri": f"{base}/Calls/{record.sid}.json",
            }
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": record.body,
            "date_created": rfc2822(record.date_created),
            "date_sent": rfc2822(record.date_sent),
            "date_updated": rfc2822(record.date_updated),
            "direction": "outbound-api",
            "error_code": record.error_code,
            "error_message": ERROR_MESSAGES.get(record.error_code) if record.error_code else None,
            "from": record.from_ or None,
            "messaging_service_sid": record.params.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(max(1, -(-len(record.body) // 153))),
            "price": None,
            "price_unit": "USD",
            "sid": record.sid,
            "status": record.status,
            "subresource_uris": {
                "media": f"{base}/Messages/{record.sid}/Media.json",
                "feedback": f"{base}/Messages/{record.sid}/Feedback.json",
            },
            "to": record.to,
            "uri": f"{base}/Messages/{record.sid}.json",
        }

    def _debug_json(self, record: _Record) -> dict[str, Any]:
        data = self._api_json(record)
        data.update(
            status_callback=record.status_callback,
            idempotency_key=record.key,
            params=dict(record.params),
            callbacks=[dict(c) for c in record.callbacks],
        )
        return data

    def _key_of(self, params: dict[str, str], header_key: str | None) -> str | None:
        callback = params.get("StatusCallback")
        if callback:
            values = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query).get(self.key_param)
            if values:
                return values[0]
        return header_key or None

    def _create(
        self, kind: str, params: dict[str, str], header_key: str | None
    ) -> tuple[int, dict[str, Any], Callable[[], None] | None]:
        """Validate and record a Message or Call; returns (HTTP status, JSON, what to run after the answer)."""
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            self._count_request("error")
            return failure.status, error_body(failure.status, failure.code, failure.message), None
        to = params.get("To", "").strip()
        from_ = params.get("From", "").strip()
        error = self._validate(kind, params, to, from_)
        if error is not None:
            self._count_request("error")
            return error[0], error_body(*error), None
        now = _now()
        record = _Record(
            kind=kind,
            sid=_sid("SM" if kind == "message" else "CA"),
            to=to,
            from_=from_,
            body=params.get("Body", "") if kind == "message" else "",
            status="queued",
            params=dict(params),
            status_callback=params.get("StatusCallback") or None,
            key=self._key_of(params, header_key),
            date_created=now,
            date_updated=now,
        )
        with self._lock:
            generation = self._generation
            self._records[record.sid] = record
            self._order.append(record.sid)
            if kind == "message":
                self._by_to_body[(record.to, record.body)] += 1
                if record.key:
                    self._by_key[record.key] += 1
                outcome = self._outcomes.pop(0) if self._outcomes else None
            else:
                outcome = None
            self._pending_sequences += 1
            self._create_requests["accepted"] += 1
            payload = self._api_json(record)
        self._touch()
        if self.on_message is not None:
            self.on_message(self._debug_json(record))

        def run_sequence() -> None:
            if self._executor is None:
                return
            try:
                self._executor.submit(self._sequence, record, outcome, generation)
            except RuntimeError:  # the fake is stopping
                self._sequence_done()

        return 201, payload, run_sequence

    def _validate(self, kind: str, params: dict[str, str], to: str, from_: str) -> tuple[int, int, str] | None:
        if not to:
            return 400, 21604, ERROR_MESSAGES[21604]
        if not E164.match(to.removeprefix("whatsapp:")):
            return 400, 21211, f"Invalid 'To' Phone Number: {to}"
        if not from_ and not params.get("MessagingServiceSid"):
            return 400, 21603, ERROR_MESSAGES[21603]
        if kind == "message":
            if not params.get("Body") and not params.get("MediaUrl") and not params.get("ContentSid"):
                return 400, 21602, ERROR_MESSAGES[21602]
            with self._lock:
                if to in self._blocked:
                    return 400, 21610, ERROR_MESSAGES[21610]
        elif not (params.get("Url") or params.get("Twiml") or params.get("ApplicationSid")):
            return 400, 21205, ERROR_MESSAGES[21205]
        return None

    def _count_request(self, outcome: str) -> None:
        with self._lock:
            self._create_requests[outcome] += 1
        self._touch()

    def _sequence_done(self) -> None:
        with self._lock:
            self._pending_sequences = max(0, self._pending_sequences - 1)
        self._touch()

    def _sequence(self, record: _Record, outcome: _Outcome | None, generation: int) -> None:
        try:
            if record.kind == "call":
                steps: list[tuple[str, int | None]] = [("completed", None)]
            elif outcome is None:
                steps = [(s, None) for s in self.statuses if s != "queued" or record.status_callback]
            elif outcome.final == "failed":
                steps = [("queued", None), ("failed", outcome.error_code)]
            else:
                steps = [("queued", None), ("sent", None), ("undelivered", outcome.error_code)]
            for status, error_code in steps:
                if self.callback_interval and self._stopping.wait(self.callback_interval):
                    return
                with self._lock:
                    if generation != self._generation or self._stopping.is_set():
                        return
                    now = _now()
                    record.status = status
                    record.date_updated = now
                    if status == "sent":
                        record.date_sent = now
                    if error_code is not None:
                        record.error_code = error_code
                self._touch()
                if record.status_callback:
                    self._status_callback(record, status, error_code, generation)
        finally:
            self._sequence_done()

    def _status_callback(self, record: _Record, status: str, error_code: int | None, generation: int) -> None:
        assert record.status_callback is not None
        if record.kind == "call":
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "CallSid": record.sid,
                "CallStatus": status,
                "CallDuration": "0",
                "Called": record.to,
                "Caller": record.from_,
                "Direction": "outbound-api",
                "From": record.from_,
                "To": record.to,
                "Timestamp": rfc2822(_now()) or "",
                "SequenceNumber": "0",
            }
        else:
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "From": record.from_,
                "To": record.to,
                "MessageSid": record.sid,
                "SmsSid": record.sid,
                "MessageStatus": status,
                "SmsStatus": status,
            }
            if record.params.get("MessagingServiceSid"):
                params["MessagingServiceSid"] = record.params["MessagingServiceSid"]
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
        sent = self._post_webhook(record.status_callback, params, timeout=15)
        entry = {"sid": record.sid, "url": record.status_callback, "params": params, **sent}
        with self._lock:
            if generation == self._generation:
                record.callbacks.append(entry)
                self._callbacks.append(entry)
        self._touch()

    def _post_webhook(self, url: str, params: dict[str, str], *, timeout: float) -> dict[str, Any]:
        sig = signature(self.auth_token, url, params)
        request = urllib.request.Request(  # noqa: S310 - http(s) URLs our app handed us
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                "X-Twilio-Signature": sig,
                "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
                "User-Agent": "TwilioProxy/1.1",
                "Accept": "*/*",
            },
            method="POST",
        )
        result: dict[str, Any] = {
            "signature": sig,
            "status": None,
            "content_type": None,
            "response_body": "",
            "error": None,
        }
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URLs our app gave us
                result.update(
                    status=response.status,
                    content_type=response.headers.get("Content-Type"),
                    response_body=response.read().decode(errors="replace"),
                )
        except urllib.error.HTTPError as exc:
            result.update(
                status=exc.code,
                content_type=exc.headers.get("Content-Type"),
                response_body=exc.read().decode(errors="replace"),
            )
        except (OSError, ValueError) as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
        return result

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        page_size = max(1, min(1000, int(query.get("PageSize") or 50)))
        page = max(0, int(query.get("Page") or 0))
        token = query.get("PageToken", "")
        offset = int(token[4:]) if token.startswith("PAGE") and token[4:].isdigit() else page * page_size
        exact = _parse_date(query.get("DateSent"))
        before = _parse_date(query.get("DateSent<"), end_of_day=True)
        after = _parse_date(query.get("DateSent>"))
        with self._lock:
            rows = []
            for record in reversed(list(self._iter("message"))):
                if query.get("To") and record.to != query["To"]:
                    continue
                if query.get("From") and record.from_ != query["From"]:
                    continue
                sent = record.date_sent or record.date_created
                if exact is not None and sent.date() != exact.date():
                    continue
                if before is not None and sent > before:
                    continue
                if after is not None and sent < after:
                    continue
                rows.append(record)
            chosen = rows[offset : offset + page_size]
            payload_rows = [self._api_json(r) for r in chosen]
        filters = {k: v for k, v in query.items() if k in ("To", "From", "DateSent", "DateSent<", "DateSent>")}
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

        def uri(page_no: int, page_token: str | None = None) -> str:
            q: dict[str, Any] = {**filters, "PageSize": page_size, "Page": page_no}
            if page_token:
                q["PageToken"] = page_token
            return f"{base}?{urllib.parse.urlencode(q)}"

        page_no = offset // page_size
        has_next = offset + page_size < len(rows)
        return {
            "end": offset + len(chosen) - 1 if chosen else offset,
            "first_page_uri": uri(0),
            "messages": payload_rows,
            "next_page_uri": uri(page_no + 1, f"PAGE{offset + page_size}") if has_next else None,
            "page": page_no,
            "page_size": page_size,
            "previous_page_uri": uri(page_no - 1, f"PAGE{max(0, offset - page_size)}") if offset > 0 else None,
            "start": offset,
            "uri": uri(page_no, token or None),
        }

    def _fetch(self, kind: str, sid: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records.get(sid)
            if record is None or record.kind != kind:
                return None
            return self._api_json(record)


def _parse_date(value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` (a whole UTC day: start, or end with ``end_of_day``) or ``YYYY-MM-DDTHH:MM:SSZ``."""
    if not value:
        return None
    value = value.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else start
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _ResettingServer(QuietServer):
    """Accepts connections; in ``reset`` mode answers each with a TCP reset instead of HTTP."""

    fake: FakeTwilio

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if self.fake._mode == "reset":
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.close()
            self.fake._count_request("down")
            return False
        return True

    def shutdown_request(self, request: Any) -> None:
        if request.fileno() == -1:  # already reset in verify_request
            return
        super().shutdown_request(request)


_MESSAGES = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json$")
_MESSAGE = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$")
_CALLS = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Calls\.json$")
_CALL = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Calls/(?P<sid>[^/]+)\.json$")


class _ApiHandler(BaseHTTPRequestHandler):
    """HTTP/1.0: one request per connection, so taking the fake down also ends any pooled connection."""

    fake: FakeTwilio
    server_version = "FakeTwilio/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.fake
        path, _, qs = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path.startswith("/_fake/"):
            name = path[len("/_fake/") :].strip("/")
            status, payload = admin_routes(fake).handle(self.command, name, parse_query(qs), raw)
            write_json(self, status, payload)
            return
        if fake._mode == "503":
            if self.command == "POST":
                fake._count_request("down")
            write_json(self, 503, error_body(503, 20503))
            return
        if not fake._authorised(self.headers.get("Authorization")):
            write_json(self, 401, error_body(401, 20003), {"WWW-Authenticate": 'Basic realm="Twilio API"'})
            return
        for pattern, method, action in (
            (_MESSAGES, "POST", "create_message"),
            (_MESSAGES, "GET", "list_messages"),
            (_MESSAGE, "GET", "fetch_message"),
            (_CALLS, "POST", "create_call"),
            (_CALL, "GET", "fetch_call"),
        ):
            match = pattern.match(path)
            if match is None or method != self.command:
                continue
            if match.group("account") != fake.account_sid:
                write_json(self, 404, error_body(404, 20404))
                return
            if action == "list_messages":
                try:
                    write_json(self, 200, fake._list(parse_query(qs)))
                except ValueError as exc:
                    write_json(self, 400, error_body(400, 20001, f"Invalid filter: {exc}"))
                return
            if action.startswith("fetch_"):
                found = fake._fetch(action.removeprefix("fetch_"), match.group("sid"))
                if found is None:
                    write_json(self, 404, error_body(404, 20404, f"The requested resource {path} was not found"))
                else:
                    write_json(self, 200, found)
                return
            self._create(action.removeprefix("create_"), raw)
            return
        write_json(self, 404, error_body(404, 20404, f"The requested resource {path} was not found"))

    def _create(self, kind: str, raw: bytes) -> None:
        fake = self.fake
        params = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        header_key = self.headers.get("Idempotency-Key")
        with fake._lock:
            slow = fake._slow
            if slow is not None and slow.remaining is not None:
                slow.remaining -= 1
                if slow.remaining <= 0:
                    fake._slow = None
        if slow is not None and not slow.accept:
            fake._count_request("dropped")  # counted first, as the SMTP fake does (its waits get cancelled)
            fake._stopping.wait(slow.seconds)
            write_json(self, 503, error_body(503, 20503))
            return
        status, payload, after = fake._create(kind, params, header_key)
        if slow is not None and after is not None:
            after()  # accepted: the provider goes on even though its answer is late
            after = None
        if slow is not None:
            fake._stopping.wait(slow.seconds)
        with contextlib.suppress(OSError):  # a client that gave up waiting: an accepted message stands, as at Twilio
            write_json(self, status, payload)
        if after is not None:
            after()


def admin_routes(fake: FakeTwilio) -> AdminRoutes:
    """The ``/_fake/`` admin API, on the API port (while up) and on the always-up admin port in process mode.

    GET: ``state`` (counts, as in the state file), ``messages``, ``calls``, ``inbound``, ``callbacks``,
    ``count?to=&body=`` / ``count?key=`` -> ``{"count": n}``, ``duplicates``.
    POST (JSON body, keyword arguments of the handle's method): ``fail_next {n, status, code, message}``,
    ``down {mode}``, ``up``, ``slow {seconds, n, accept}``, ``undeliver_next {n, error_code, status}``,
    ``block {number}``, ``unblock {number}``, ``inbound {url, from, body, to}``, ``reset``,
    ``wait_callbacks {timeout}``.
    """
    routes = AdminRoutes()

    def count(q: dict[str, str]) -> dict[str, int]:
        if "key" in q:
            return {"count": fake.count_key(q["key"])}
        return {"count": fake.count(q["to"], q["body"])}

    def inbound(a: dict[str, Any]) -> dict[str, Any]:
        d = fake.send_inbound(a["url"], a["from"], a["body"], to=a.get("to"))
        return {"sid": d.sid, "status": d.status, "content_type": d.content_type, "body": d.body, "error": d.error}

    def ok(action: Callable[[], None]) -> dict[str, bool]:
        action()
        return {"ok": True}

    routes.gets.update(
        state=lambda q: fake.snapshot(),
        messages=lambda q: fake.messages,
        calls=lambda q: fake.calls,
        inbound=lambda q: fake.inbound,
        callbacks=lambda q: fake.callbacks,
        count=count,
        duplicates=lambda q: fake.duplicates(),
    )
    routes.posts.update(
        fail_next=lambda a: ok(
            lambda: fake.fail_next(
                int(a.get("n", 1)), status=a.get("status"), code=a.get("code"), message=a.get("message")
            )
        ),
        down=lambda a: ok(lambda: fake.down(a.get("mode", "refuse"))),
        up=lambda a: ok(fake.up),
        slow=lambda a: ok(lambda: fake.slow(float(a["seconds"]), n=a.get("n"), accept=bool(a.get("accept", False)))),
        undeliver_next=lambda a: ok(
            lambda: fake.undeliver_next(
                int(a.get("n", 1)), error_code=int(a.get("error_code", 30005)), status=a.get("status", "undelivered")
            )
        ),
        block=lambda a: ok(lambda: fake.block(a["number"])),
        unblock=lambda a: ok(lambda: fake.unblock(a["number"])),
        inbound=inbound,
        reset=lambda a: ok(fake.reset),
        wait_callbacks=lambda a: ok(lambda: fake.wait_callbacks(float(a.get("timeout", 10)))),
    )
    return routes


class FakeTwilioProcess(FakeProcess):
    """``python -m tests.fakes.twilio_server`` as a child process; ``.admin`` steers it, ``.state()`` reads counts.

    ``admin.post("fail_next", n=2, status=503)``, ``admin.get("count", key=k)["count"]``, ``admin.post("down")`` ...
    """

    def __init__(
        self,
        *,
        state_file: Path,
        log_path: Path,
        port: int = 0,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        extra_args: list[str] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        args = ["--port", str(port), "--account-sid", account_sid, "--auth-token", auth_token, *(extra_args or [])]
        super().__init__("tests.fakes.twilio_server", args, state_file, log_path)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local Twilio REST API for tests and `make run` demo mode.")
    parser.add_argument("--port", type=int, default=8025, help="API port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--admin-port", type=int, default=0, help="always-up /_fake/ admin port (0: any free port)")
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument("--state-file", help="JSON file mirroring the counts (written within 0.2 s of a change)")
    parser.add_argument("--key-param", default="idempotency_key", help="StatusCallback query parameter with our key")
    parser.add_argument("--callback-interval", type=float, default=0.0, help="seconds between status callbacks")
    parser.add_argument("--log", action="store_true", help="print one line per message (recipient masked)")
    args = parser.parse_args(argv)

    def log_line(message: dict[str, Any]) -> None:
        kind = "call" if message["sid"].startswith("CA") else "sms"
        say(f"fake-twilio: {kind} {message['sid']} to {mask(message['to'])}: {first_words(message['body'] or '')}")

    fake = FakeTwilio(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        port=args.port,
        key_param=args.key_param,
        callback_interval=args.callback_interval,
        on_message=log_line if args.log else None,
    ).start()
    return serve_until_signalled(
        fake,
        admin_routes(fake),
        args.admin_port,
        args.state_file,
        f"fake-twilio: listening on {fake.base_url} (admin http://127.0.0.1:{{admin}}/_fake/state)",
    )


if __name__ == "__main__":
    sys.exit(main())
