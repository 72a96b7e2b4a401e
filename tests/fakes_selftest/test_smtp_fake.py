"""The fake SMTP server works with Django's real SMTP backend, counts what arrives, and fails as documented."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection

from tests.fakes.smtp_server import FakeSmtp, FakeSmtpProcess
from tests.support.servers import wait_until

TO = "ana.demo@example.org"


@pytest.fixture
def smtp(settings) -> Iterator[FakeSmtp]:  # type: ignore[no-untyped-def]
    fake = FakeSmtp().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = fake.host
    settings.EMAIL_PORT = fake.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 2
    yield fake
    fake.stop()


def send(message_id: str = "<k-1@consulta.local>", to: str = TO, subject: str = "Your visit tomorrow") -> int:
    email = EmailMessage(subject, "See you at 10:00.", "clinic@example.org", [to], headers={"Message-ID": message_id})
    return email.send()


def test_django_smtp_backend_delivers_and_the_fake_parses_it(smtp: FakeSmtp) -> None:
    email = EmailMultiAlternatives(
        "Your visit tomorrow",
        "See you at 10:00.",
        "clinic@example.org",
        [TO, "second@example.org"],
        headers={"Message-ID": "<k-1@consulta.local>"},
    )
    email.attach_alternative("<p>See you at 10:00.</p>", "text/html")

    assert email.send() == 1

    (message,) = smtp.messages
    assert message["message_id"] == "<k-1@consulta.local>"
    assert message["subject"] == "Your visit tomorrow"
    assert message["to"] == [TO, "second@example.org"]
    assert message["rcpt_tos"] == [TO, "second@example.org"]
    assert message["mail_from"] == "clinic@example.org"
    assert message["text"].strip() == "See you at 10:00."
    assert smtp.count_message_id("k-1@consulta.local") == 1
    assert smtp.count_message_id("<k-1@consulta.local>") == 1
    assert smtp.count_recipient(TO.upper()) == 1
    assert smtp.transactions == {"accepted": 1}


def test_counts_show_duplicate_message_ids(smtp: FakeSmtp) -> None:
    send("<a@x>")
    send("<b@x>")
    send("<b@x>")

    assert smtp.duplicates() == {"b@x": 2}
    assert smtp.counts()["messages"] == 3
    assert smtp.count_recipient(TO) == 3


@pytest.mark.parametrize(
    ("stage", "code", "error"),
    [
        ("MAIL", 421, smtplib.SMTPSenderRefused),
        ("MAIL", 451, smtplib.SMTPSenderRefused),
        ("RCPT", 550, smtplib.SMTPRecipientsRefused),
        ("DATA", 451, smtplib.SMTPDataError),
        ("DATA", 554, smtplib.SMTPDataError),
    ],
)
def test_reply_next_fails_the_next_transaction_then_recovers(
    smtp: FakeSmtp, stage: str, code: int, error: type[Exception]
) -> None:
    smtp.reply_next(1, code=code, stage=stage)

    with pytest.raises(error) as info:
        send()

    text = str(info.value)
    assert str(code) in text
    assert smtp.messages == []
    assert smtp.transactions == {"refused": 1}
    assert send() == 1
    assert smtp.count_message_id("<k-1@consulta.local>") == 1


def test_reject_refuses_one_mailbox_only(smtp: FakeSmtp) -> None:
    smtp.reject("bounce@example.org")

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(to="bounce@example.org")
    send(to=TO)

    assert smtp.count_recipient("bounce@example.org") == 0
    assert smtp.count_recipient(TO) == 1


def test_down_refuses_connections_and_up_listens_on_the_same_port(smtp: FakeSmtp) -> None:
    port = smtp.port
    smtp.down()

    with pytest.raises(ConnectionRefusedError):
        send()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    smtp.up()

    assert smtp.port == port
    assert send() == 1
    assert smtp.counts()["messages"] == 1


def test_slow_without_accept_times_the_client_out_and_records_nothing(smtp: FakeSmtp, settings) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_TIMEOUT = 0.5
    smtp.slow(3, n=1)

    with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected), match="timed out"):
        send()

    smtp.wait_until(lambda: smtp.transactions.get("dropped") == 1, timeout=10, what="the dropped message")
    assert smtp.messages == []
    assert send() == 1


def test_slow_with_accept_records_the_message_although_the_client_timed_out(smtp: FakeSmtp, settings) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_TIMEOUT = 0.5
    smtp.slow(3, n=1, accept=True)

    with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected), match="timed out"):
        send("<ambiguous@x>")

    assert smtp.count_message_id("<ambiguous@x>") == 1


def test_one_connection_sends_many_messages(smtp: FakeSmtp) -> None:
    with get_connection() as connection:
        sent = connection.send_messages(
            [EmailMessage("s", "b", "clinic@example.org", [TO], headers={"Message-ID": f"<m{i}@x>"}) for i in range(20)]
        )

    assert sent == 20
    assert len(smtp.counts()["by_message_id"]) == 20
    assert smtp.duplicates() == {}


def test_reset_forgets_messages_and_failures(smtp: FakeSmtp) -> None:
    send()
    smtp.reply_next(3, code=451)
    smtp.down()

    smtp.reset()

    assert smtp.messages == []
    assert send() == 1


def test_process_mode_admin_api_and_state_file(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    proc = FakeSmtpProcess(state_file=tmp_path / "smtp.json", log_path=tmp_path / "smtp.log", extra_args=["--log"])
    try:
        connection = get_connection(
            "django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=proc.port, timeout=5
        )
        mail = EmailMessage(
            "Reminder", "b", "clinic@example.org", [TO], headers={"Message-ID": "<p1@x>"}, connection=connection
        )
        assert mail.send() == 1
        assert proc.admin.get("count", message_id="<p1@x>") == {"count": 1}

        proc.admin.post("reply_next", code=550, stage="RCPT")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            mail.send()
        proc.admin.post("down")
        with pytest.raises(ConnectionRefusedError):
            mail.send()
        proc.admin.post("up")
        mail.send()
        wait_until(lambda: proc.state()["duplicates"] == {"p1@x": 2}, timeout=10, what="the state file")
    finally:
        proc.stop()
    assert proc.proc.returncode == 0
    assert proc.state()["transactions"] == {"accepted": 2, "refused": 1}
    log = proc.log_path.read_text()
    assert "fake-smtp: mail <p1@x> to a***@example.org: Reminder" in log
    assert TO not in log
