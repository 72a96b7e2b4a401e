"""The providers behind the outbox: Twilio's SDK for SMS (two slots) and Django's SMTP backend for email.

Nothing here touches the database; ``notifications.services.dispatch`` records what these return. Recipients and
bodies are never logged (the Twilio SDK's own request log is silenced in settings.LOGGING)."""

from __future__ import annotations

import datetime as dt
import smtplib
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import Timeout as RequestsTimeout
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from notifications.models import Provider

# Twilio errors that no retry can fix: the message goes straight to the next channel.
PERMANENT_SMS_ERRORS = frozenset({"21211", "21214", "21408", "21610", "21612", "21614", "30004", "30005", "30006"})
UNSUBSCRIBED = "21610"


@dataclass(frozen=True)
class SendResult:
    """``accepted`` with the provider's id; or an error with a code; ``ambiguous`` when the request may have reached
    the provider (timeout, connection dropped after sending): the caller must look it up before sending again."""

    accepted: bool
    provider_message_id: str = ""
    error_code: str = ""
    permanent: bool = False
    ambiguous: bool = False


@dataclass(frozen=True)
class TwilioSlot:
    name: str
    account_sid: str
    auth_token: str
    from_number: str
    api_base: str


def twilio_slot(provider: str) -> TwilioSlot | None:
    if provider == Provider.TWILIO:
        slot = TwilioSlot(
            Provider.TWILIO,
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_FROM_NUMBER,
            settings.TWILIO_API_BASE,
        )
    elif provider == Provider.TWILIO_SECONDARY:
        slot = TwilioSlot(
            Provider.TWILIO_SECONDARY,
            settings.TWILIO_SECONDARY_ACCOUNT_SID,
            settings.TWILIO_SECONDARY_AUTH_TOKEN,
            settings.TWILIO_SECONDARY_FROM_NUMBER,
            settings.TWILIO_SECONDARY_API_BASE or settings.TWILIO_API_BASE,
        )
    else:
        return None
    return slot if slot.account_sid and slot.auth_token and slot.from_number else None


def sms_providers() -> list[str]:
    """The configured SMS slots in failover order."""
    return [p for p in (Provider.TWILIO, Provider.TWILIO_SECONDARY) if twilio_slot(p) is not None]


def webhook_auth_tokens() -> list[str]:
    return [s.auth_token for p in (Provider.TWILIO, Provider.TWILIO_SECONDARY) if (s := twilio_slot(p))]


@cache
def _client(slot: TwilioSlot, timeout: float) -> Client:
    """The real SDK. ``api_base`` set (tests, demo) points the API domain at a local server that speaks Twilio's REST
    API: the SDK builds every URL from ``client.api.base_url`` (``twilio.base.domain.Domain.absolute_url``).
    One client per slot per process: its ``requests`` session pools connections across threads."""
    client = Client(slot.account_sid, slot.auth_token, http_client=TwilioHttpClient(timeout=timeout))
    if slot.api_base:
        client.api.base_url = slot.api_base.rstrip("/")
        client.edge = client.region = None  # TWILIO_EDGE/TWILIO_REGION in the environment would rewrite the host
    return client


def twilio_client(provider: str) -> Client:
    slot = twilio_slot(provider)
    if slot is None:
        raise LookupError(f"SMS provider {provider} is not configured")
    return _client(slot, float(settings.TWILIO_TIMEOUT_SECONDS))


def sms_send(*, provider: str, to: str, body: str, status_callback: str) -> SendResult:
    slot = twilio_slot(provider)
    if slot is None:
        return SendResult(accepted=False, error_code="not_configured", permanent=True)
    try:
        message = twilio_client(provider).messages.create(
            to=to, from_=slot.from_number, body=body, status_callback=status_callback
        )
    except TwilioRestException as exc:
        code = str(exc.code or f"http_{exc.status}")
        if exc.status >= 500 or exc.status == 429:
            return SendResult(accepted=False, error_code=code)
        return SendResult(accepted=False, error_code=code, permanent=code in PERMANENT_SMS_ERRORS or exc.status < 500)
    except RequestsTimeout:
        return SendResult(accepted=False, error_code="timeout", ambiguous=True)
    except RequestsConnectionError as exc:
        # Refused before anything was sent is clear; a connection dropped mid-request is not.
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        refused = isinstance(reason, NewConnectionError)
        return SendResult(accepted=False, error_code="connection", ambiguous=not refused)
    except TwilioException:
        return SendResult(accepted=False, error_code="provider_error", ambiguous=True)
    return SendResult(accepted=True, provider_message_id=str(message.sid))


def voice_call(*, provider: str, to: str, text: str, status_callback: str) -> SendResult:
    """A voice call that reads ``text`` (TwiML ``<Say>``)."""
    from xml.sax.saxutils import escape

    slot = twilio_slot(provider)
    if slot is None:
        return SendResult(accepted=False, error_code="not_configured", permanent=True)
    try:
        call = twilio_client(provider).calls.create(
            to=to,
            from_=slot.from_number,
            twiml=f"<Response><Say>{escape(text)}</Say></Response>",
            status_callback=status_callback,
        )
    except TwilioRestException as exc:
        code = str(exc.code or f"http_{exc.status}")
        return SendResult(accepted=False, error_code=code, permanent=400 <= exc.status < 500 and exc.status != 429)
    except RequestsTimeout:
        return SendResult(accepted=False, error_code="timeout", ambiguous=True)
    except (RequestsConnectionError, TwilioException):
        return SendResult(accepted=False, error_code="connection")
    return SendResult(accepted=True, provider_message_id=str(call.sid))


def sms_lookup(*, provider: str, to: str, body: str, since: dt.datetime) -> str | None:
    """The sid of a message the provider accepted for ``to`` with exactly ``body`` since ``since`` (our attempt's
    start), or None. Used before re-sending a message whose outcome we never recorded. Raises on provider errors
    (the caller then leaves the row for a later pass rather than risk a duplicate)."""
    client = twilio_client(provider)
    # DateSent filters by day (UTC); a day earlier covers attempts started just before midnight. Twilio lists newest
    # first, so paging stops at the first message older than the attempt: every message sent to this number since
    # the attempt began is looked at, however many there are, and nothing older is fetched.
    after = (since - dt.timedelta(days=1)).date()
    oldest = since - dt.timedelta(seconds=5)
    for message in client.messages.stream(
        to=to, date_sent_after=dt.datetime.combine(after, dt.time.min), page_size=100
    ):
        created = message.date_created or message.date_sent
        if created is not None and created < oldest:
            break
        if message.body == body:
            return str(message.sid)
    return None


def email_send(*, to: str, subject: str, body: str, message_id: str) -> SendResult:
    """Django's SMTP backend; ``message_id`` (our idempotency key) becomes the Message-ID header, so a receiving
    server and the fake can recognise a re-send."""
    email = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": f"<{message_id}@consulta>"},
    )
    try:
        with get_connection(fail_silently=False) as connection:
            connection.send_messages([email])
    except smtplib.SMTPRecipientsRefused:
        return SendResult(accepted=False, error_code="smtp_recipient_refused", permanent=True)
    except smtplib.SMTPResponseException as exc:
        code = f"smtp_{exc.smtp_code}"
        return SendResult(accepted=False, error_code=code, permanent=500 <= exc.smtp_code < 600)
    except TimeoutError:
        return SendResult(accepted=False, error_code="timeout", ambiguous=True)
    except (smtplib.SMTPException, OSError):
        return SendResult(accepted=False, error_code="smtp_unavailable")
    return SendResult(accepted=True, provider_message_id=f"<{message_id}@consulta>")
