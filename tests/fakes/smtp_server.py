"""A local SMTP server (aiosmtpd) for Django's SMTP email backend, recording what arrives and failing on demand.

Every message accepted at DATA is parsed and recorded: ``message_id`` (the ``Message-ID`` header, angle brackets
kept, as Django writes it), envelope ``mail_from`` / ``rcpt_tos``, headers ``from``, ``to``, ``subject``, the first
``text/plain`` part as ``text``, and a ``received_at`` timestamp. Counts by Message-ID and by envelope recipient
answer exactly-once questions (our SMTP path uses the idempotency key as Message-ID).

Failure modes (all thread-safe, callable while mail flows):

- :meth:`FakeSmtp.reply_next` -- the next ``n`` transactions get ``code`` (e.g. 421 service closing, 451 local error,
  550 mailbox unavailable) at the ``MAIL``, ``RCPT`` or ``DATA`` stage, and nothing is recorded. With 421 Python's
  smtplib closes the connection itself.
- :meth:`FakeSmtp.reject` -- one address is refused at ``RCPT`` (default 550) until :meth:`FakeSmtp.reset`.
- :meth:`FakeSmtp.down` / :meth:`FakeSmtp.up` -- stop listening (connection refused), then listen again on the same
  port.
- :meth:`FakeSmtp.slow` -- hold the DATA reply ``seconds``; without ``accept`` the message is then refused with 451
  (a client that timed out sent nothing), with ``accept=True`` it is recorded before the wait (the ambiguous case: the
  client timed out but the mail went through).

In a test::

    smtp = FakeSmtp().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    ...
    smtp.wait_until(lambda: smtp.count_message_id("<key@consulta>") == 1)
    smtp.stop()

As a process: ``python -m tests.fakes.smtp_server --port P --state-file F [--admin-port A] [--log]``, steered through
the ``/_fake/`` admin API on the admin port (see :func:`admin_routes`) -- see :class:`FakeSmtpProcess`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.fakes._admin import AdminRoutes, FakeProcess, first_words, mask, say, serve_until_signalled

STAGES = ("MAIL", "RCPT", "DATA")
DEFAULT_TEXT = {
    421: "Service not available, closing transmission channel",
    450: "Requested mail action not taken: mailbox unavailable",
    451: "Requested action aborted: local error in processing",
    452: "Requested action not taken: insufficient system storage",
    550: "Requested action not taken: mailbox unavailable",
    552: "Requested mail action aborted: exceeded storage allocation",
    554: "Transaction failed",
}


@dataclass
class _Reply:
    code: int
    text: str
    stage: str

    def line(self) -> str:
        return f"{self.code} {self.text}"


@dataclass
class _Slow:
    seconds: float
    remaining: int | None
    accept: bool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeSmtp:
    """An SMTP server on 127.0.0.1 in a thread of this process (aiosmtpd ``Controller``).

    Inspection: :attr:`messages`, :meth:`count_message_id`, :meth:`count_recipient`, :meth:`counts`,
    :meth:`duplicates`, :attr:`transactions`. Control: :meth:`reply_next`, :meth:`reject`, :meth:`down`, :meth:`up`,
    :meth:`slow`, :meth:`reset`. Waiting: :meth:`wait_until`.
    """

    def __init__(self, *, port: int = 0, on_message: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._port = port or free_port()
        # aiosmtpd logs every envelope address at INFO: keep recipients out of test and demo logs.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.on_message = on_message
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._controller: Controller | None = None
        self._listeners: list[Callable[[], None]] = []
        self._clear()

    def _clear(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self._by_message_id: Counter[str] = Counter()
        self._by_recipient: Counter[str] = Counter()
        self._transactions: Counter[str] = Counter()
        self._replies: list[_Reply] = []
        self._rejected: dict[str, _Reply] = {}
        self._slow: _Slow | None = None
        self._down = False

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> FakeSmtp:
        self._listen()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._close()

    def __enter__(self) -> FakeSmtp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def _listen(self) -> None:
        controller = Controller(_Handler(self), hostname="127.0.0.1", port=self._port, ready_timeout=10)
        controller.start()
        self._controller = controller

    def _close(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    # -- control -----------------------------------------------------------------------------------------------

    def reply_next(self, n: int = 1, *, code: int = 451, message: str | None = None, stage: str = "DATA") -> None:
        """The next ``n`` transactions answer ``code`` at ``stage`` (MAIL, RCPT or DATA); nothing is recorded."""
        stage = stage.upper()
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}")
        if not 400 <= code < 600:
            raise ValueError("code must be a 4xx or 5xx SMTP reply code")
        with self._lock:
            self._replies.extend(_Reply(code, message or DEFAULT_TEXT.get(code, "Error"), stage) for _ in range(n))
        self._touch()

    def reject(self, address: str, *, code: int = 550, message: str | None = None) -> None:
        """Refuse ``address`` at RCPT with ``code`` until :meth:`reset` (a bouncing mailbox)."""
        with self._lock:
            self._rejected[address.lower()] = _Reply(code, message or DEFAULT_TEXT.get(code, "Error"), "RCPT")
        self._touch()

    def down(self) -> None:
        """Stop listening: new connections are refused until :meth:`up`."""
        with self._lock:
            was_down, self._down = self._down, True
        if not was_down:
            self._close()
        self._touch()

    def up(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            self._listen()
        self._touch()

    def slow(self, seconds: float, *, n: int | None = None, accept: bool = False) -> None:
        """Hold the DATA reply of the next ``n`` messages (all, if None) for ``seconds``; ``seconds=0`` ends it."""
        with self._lock:
            self._slow = _Slow(seconds, n, accept) if seconds > 0 else None
        self._touch()

    def reset(self) -> None:
        """Forget every message and armed failure; listen again if down."""
        with self._lock:
            was_down = self._down
            self._clear()
        if was_down:
            self._listen()
        self._touch()

    # -- inspection --------------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted messages, oldest first (see the module docstring for the fields)."""
        with self._lock:
            return [dict(m) for m in self._messages]

    @property
    def transactions(self) -> dict[str, int]:
        """SMTP transactions by outcome: ``accepted``, ``refused`` (armed replies, rejects), ``dropped`` (slow)."""
        with self._lock:
            return dict(self._transactions)

    def count_message_id(self, message_id: str) -> int:
        """Accepted messages with this Message-ID (with or without angle brackets)."""
        with self._lock:
            return self._by_message_id[_bare(message_id)]

    def count_recipient(self, address: str) -> int:
        """Accepted messages with ``address`` among the envelope recipients."""
        with self._lock:
            return self._by_recipient[address.lower()]

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {
                "messages": len(self._messages),
                "by_message_id": dict(self._by_message_id),
                "by_recipient": dict(self._by_recipient),
            }

    def duplicates(self) -> dict[str, int]:
        """Message-IDs received more than once."""
        with self._lock:
            return {k: c for k, c in self._by_message_id.items() if c > 1}

    def wait_until(self, condition: Callable[[], bool], *, timeout: float = 10, what: str = "condition") -> None:
        """Block until ``condition()`` holds (re-checked on every change); TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake SMTP: timed out after {timeout}s waiting for {what}")
                self._changed.wait(min(remaining, 0.2))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "ready": True,
                "port": self._port,
                "down": self._down,
                **self.counts(),
                "transactions": dict(self._transactions),
                "duplicates": self.duplicates(),
            }

    # -- internals (called from the aiosmtpd loop thread) -------------------------------------------------------

    def _touch(self) -> None:
        with self._changed:
            self._changed.notify_all()
        for listener in list(self._listeners):
            listener()

    def _armed(self, stage: str, address: str | None = None) -> str | None:
        with self._lock:
            if address is not None and address.lower() in self._rejected:
                self._transactions["refused"] += 1
                reply = self._rejected[address.lower()].line()
            elif self._replies and self._replies[0].stage == stage:
                self._transactions["refused"] += 1
                reply = self._replies.pop(0).line()
            else:
                return None
        self._touch()
        return reply

    def _take_slow(self) -> _Slow | None:
        with self._lock:
            slow = self._slow
            if slow is not None and slow.remaining is not None:
                slow.remaining -= 1
                if slow.remaining <= 0:
                    self._slow = None
            return slow

    def _record(self, envelope: Envelope, peer: Any) -> dict[str, Any]:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        parsed = message_from_bytes(data, policy=policy.default)
        text = ""
        if isinstance(parsed, EmailMessage):
            part = parsed.get_body(preferencelist=("plain",))
            if part is not None:
                text = str(part.get_content())
        message = {
            "message_id": str(parsed.get("Message-ID", "")),
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "from": str(parsed.get("From", "")),
            "to": [a.strip() for a in str(parsed.get("To", "")).split(",") if a.strip()],
            "subject": str(parsed.get("Subject", "")),
            "text": text,
            "size": len(data),
            "received_at": datetime.now(UTC).isoformat(),
            "peer": list(peer) if isinstance(peer, tuple) else str(peer),
        }
        with self._lock:
            self._messages.append(message)
            if message["message_id"]:
                self._by_message_id[_bare(message["message_id"])] += 1
            for rcpt in envelope.rcpt_tos:
                self._by_recipient[rcpt.lower()] += 1
            self._transactions["accepted"] += 1
        self._touch()
        if self.on_message is not None:
            self.on_message(dict(message))
        return message


def _bare(message_id: str) -> str:
    return message_id.strip().removeprefix("<").removesuffix(">")


class _Handler:
    """aiosmtpd handler hooks; the real protocol work is aiosmtpd's."""

    def __init__(self, fake: FakeSmtp) -> None:
        self.fake = fake

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        reply = self.fake._armed("MAIL")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.fake._armed("RCPT", address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        reply = self.fake._armed("DATA")
        if reply is not None:
            return reply
        slow = self.fake._take_slow()
        if slow is not None and not slow.accept:
            # Counted first: when the client gives up, aiosmtpd cancels this coroutine during the wait.
            with self.fake._lock:
                self.fake._transactions["dropped"] += 1
            self.fake._touch()
            await asyncio.sleep(slow.seconds)
            return f"451 {DEFAULT_TEXT[451]}"
        message = self.fake._record(envelope, session.peer)
        if slow is not None:
            await asyncio.sleep(slow.seconds)
        return f"250 OK queued as {_bare(message['message_id']) or 'no-id'}"


def admin_routes(fake: FakeSmtp) -> AdminRoutes:
    """The ``/_fake/`` admin API of the process mode.

    GET: ``state`` (as in the state file), ``messages``, ``count?message_id=`` / ``count?recipient=`` ->
    ``{"count": n}``, ``duplicates``. POST (JSON keyword arguments of the handle's method): ``reply_next {n, code,
    message, stage}``, ``reject {address, code, message}``, ``down``, ``up``, ``slow {seconds, n, accept}``, ``reset``.
    """
    routes = AdminRoutes()

    def count(q: dict[str, str]) -> dict[str, int]:
        if "message_id" in q:
            return {"count": fake.count_message_id(q["message_id"])}
        return {"count": fake.count_recipient(q["recipient"])}

    def ok(action: Callable[[], None]) -> dict[str, bool]:
        action()
        return {"ok": True}

    routes.gets.update(
        state=lambda q: fake.snapshot(),
        messages=lambda q: fake.messages,
        count=count,
        duplicates=lambda q: fake.duplicates(),
    )
    routes.posts.update(
        reply_next=lambda a: ok(
            lambda: fake.reply_next(
                int(a.get("n", 1)), code=int(a.get("code", 451)), message=a.get("message"), stage=a.get("stage", "DATA")
            )
        ),
        reject=lambda a: ok(lambda: fake.reject(a["address"], code=int(a.get("code", 550)), message=a.get("message"))),
        down=lambda a: ok(fake.down),
        up=lambda a: ok(fake.up),
        slow=lambda a: ok(lambda: fake.slow(float(a["seconds"]), n=a.get("n"), accept=bool(a.get("accept", False)))),
        reset=lambda a: ok(fake.reset),
    )
    return routes


class FakeSmtpProcess(FakeProcess):
    """``python -m tests.fakes.smtp_server`` as a child process; ``.admin`` steers it, ``.state()`` reads counts."""

    def __init__(self, *, state_file: Path, log_path: Path, port: int = 0, extra_args: list[str] | None = None) -> None:
        super().__init__("tests.fakes.smtp_server", ["--port", str(port), *(extra_args or [])], state_file, log_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local SMTP server for tests and `make run` demo mode.")
    parser.add_argument("--port", type=int, default=8026, help="SMTP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--admin-port", type=int, default=0, help="/_fake/ admin HTTP port (0: any free port)")
    parser.add_argument("--state-file", help="JSON file mirroring the counts (written within 0.2 s of a change)")
    parser.add_argument("--log", action="store_true", help="print one line per message (recipient masked)")
    args = parser.parse_args(argv)

    def log_line(message: dict[str, Any]) -> None:
        rcpts = ", ".join(mask(r) for r in message["rcpt_tos"])
        say(f"fake-smtp: mail {message['message_id']} to {rcpts}: {first_words(message['subject'], 4)}")

    fake = FakeSmtp(port=args.port, on_message=log_line if args.log else None).start()
    return serve_until_signalled(
        fake,
        admin_routes(fake),
        args.admin_port,
        args.state_file,
        f"fake-smtp: listening on 127.0.0.1:{fake.port} (admin http://127.0.0.1:{{admin}}/_fake/state)",
    )


if __name__ == "__main__":
    sys.exit(main())
