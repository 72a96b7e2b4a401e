"""The fake Twilio speaks Twilio's protocol: the real SDK works against it, its webhooks pass the SDK's validator,
and every failure mode does what tests/fakes/twilio_server.py documents."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from tests.fakes.twilio_server import FakeTwilio, FakeTwilioProcess, signature, twilio_client
from tests.support.servers import wait_until

from .conftest import SID, TOKEN, WebhookSink

TO = "+15551230001"
FROM = "+15005550006"


def test_sdk_message_create_fetch_list_round_trip(fake_twilio: FakeTwilio) -> None:
    client = fake_twilio.client()

    created = client.messages.create(to=TO, from_=FROM, body="Reminder: your visit tomorrow at 10:00")

    assert re.fullmatch(r"SM[0-9a-f]{32}", created.sid)
    assert created.status == "queued"
    assert created.account_sid == SID
    assert created.to == TO
    assert created.from_ == FROM
    assert created.direction == "outbound-api"
    assert created.error_code is None
    assert isinstance(created.date_created, datetime)
    assert created.date_created.tzinfo is not None
    assert created.uri == f"/2010-04-01/Accounts/{SID}/Messages/{created.sid}.json"
    fake_twilio.wait_callbacks()
    fetched = client.messages(created.sid).fetch()
    assert fetched.sid == created.sid
    assert fetched.body == created.body
    assert fetched.status == "delivered"
    assert isinstance(fetched.date_sent, datetime)
    assert [m.sid for m in client.messages.list(to=TO)] == [created.sid]
    assert client.messages.list(to="+15559999999") == []


def test_sdk_points_at_base_url_via_api_domain(fake_twilio: FakeTwilio) -> None:
    client = twilio_client(fake_twilio.base_url, SID, TOKEN, timeout=5)

    assert client.api.base_url == fake_twilio.base_url
    client.messages.create(to=TO, from_=FROM, body="hello")
    assert fake_twilio.count(TO, "hello") == 1


def test_list_pages_newest_first_and_filters_by_date_sent(fake_twilio: FakeTwilio) -> None:
    client = fake_twilio.client()
    sids = [client.messages.create(to=TO, from_=FROM, body=f"n{i}").sid for i in range(7)]
    client.messages.create(to="+15551230002", from_=FROM, body="other")
    fake_twilio.wait_callbacks()

    page = client.messages.page(to=TO, page_size=3)
    assert [m.sid for m in page] == sids[::-1][:3]
    assert page.next_page_url is not None
    assert [m.sid for m in client.messages.stream(to=TO, page_size=3)] == sids[::-1]
    now = datetime.now(UTC)
    window = client.messages.list(
        to=TO, date_sent_after=now - timedelta(minutes=5), date_sent_before=now + timedelta(minutes=5)
    )
    assert len(window) == 7
    assert client.messages.list(to=TO, date_sent_after=now + timedelta(minutes=5)) == []
    assert client.messages.list(to=TO, date_sent_before=now - timedelta(days=2)) == []
    assert len(client.messages.list(to=TO, date_sent=now.date())) == 7


def test_status_callbacks_go_queued_sent_delivered_signed_like_twilio(
    fake_twilio: FakeTwilio, sink: WebhookSink
) -> None:
    callback = sink.url("/api/v1/notifications/twilio/status/?idempotency_key=k-1")
    sid = fake_twilio.client().messages.create(to=TO, from_=FROM, body="hi", status_callback=callback).sid

    fake_twilio.wait_callbacks()

    assert [h.params["MessageStatus"] for h in sink.hooks] == ["queued", "sent", "delivered"]
    validator = RequestValidator(TOKEN)
    for hook in sink.hooks:
        assert hook.params["MessageSid"] == hook.params["SmsSid"] == sid
        assert hook.params["AccountSid"] == SID
        assert hook.params["To"] == TO
        assert hook.params["From"] == FROM
        assert "ErrorCode" not in hook.params
        assert hook.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert validator.validate(sink.full_url(hook), hook.params, hook.headers["X-Twilio-Signature"])
        assert not RequestValidator("wrong-token").validate(
            sink.full_url(hook), hook.params, hook.headers["X-Twilio-Signature"]
        )
        forged = {**hook.params, "MessageStatus": "undelivered"}
        assert not validator.validate(sink.full_url(hook), forged, hook.headers["X-Twilio-Signature"])
    assert [c["status"] for c in fake_twilio.callbacks] == [200, 200, 200]


def test_signature_matches_sdk_for_repeated_and_unicode_params() -> None:
    url = "https://clinic.example/api/v1/notifications/twilio/inbound/?a=1"
    params = {"Body": "Sí, confirmo ✓", "From": "+15551230001", "NumMedia": "0"}
    assert signature(TOKEN, url, params) == RequestValidator(TOKEN).compute_signature(url, params)


def test_undeliver_next_ends_undelivered_with_error_code(fake_twilio: FakeTwilio, sink: WebhookSink) -> None:
    client = fake_twilio.client()
    fake_twilio.undeliver_next(1, error_code=30005)

    first = client.messages.create(to=TO, from_=FROM, body="a", status_callback=sink.url("/s/"))
    second = client.messages.create(to=TO, from_=FROM, body="b", status_callback=sink.url("/s/"))
    fake_twilio.wait_callbacks()

    first_hooks = [h.params for h in sink.hooks if h.params["MessageSid"] == first.sid]
    assert [h["MessageStatus"] for h in first_hooks] == ["queued", "sent", "undelivered"]
    assert first_hooks[-1]["ErrorCode"] == "30005"
    fetched = client.messages(first.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30005)
    assert client.messages(second.sid).fetch().status == "delivered"


def test_undeliver_next_failed_goes_queued_failed(fake_twilio: FakeTwilio, sink: WebhookSink) -> None:
    fake_twilio.undeliver_next(1, error_code=30003, status="failed")

    sid = fake_twilio.client().messages.create(to=TO, from_=FROM, body="a", status_callback=sink.url("/s/")).sid
    fake_twilio.wait_callbacks()

    assert [(h.params["MessageStatus"], h.params.get("ErrorCode")) for h in sink.hooks] == [
        ("queued", None),
        ("failed", "30003"),
    ]
    assert fake_twilio.client().messages(sid).fetch().status == "failed"


def test_wrong_credentials_get_twilio_20003_and_nothing_is_sent(fake_twilio: FakeTwilio) -> None:
    client = twilio_client(fake_twilio.base_url, SID, "not-the-token")

    with pytest.raises(TwilioRestException) as info:
        client.messages.create(to=TO, from_=FROM, body="x")

    assert (info.value.status, info.value.code) == (401, 20003)
    assert fake_twilio.messages == []
    other_account = twilio_client(fake_twilio.base_url, "AC" + "cd" * 16, TOKEN)
    with pytest.raises(TwilioRestException):
        other_account.messages.create(to=TO, from_=FROM, body="x")


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": TO, "from_": FROM}, 21602),
        ({"to": "555-1234", "from_": FROM, "body": "x"}, 21211),
        ({"to": TO, "body": "x"}, 21603),
    ],
)
def test_invalid_requests_get_twilio_400_codes(fake_twilio: FakeTwilio, kwargs: dict[str, str], code: int) -> None:
    with pytest.raises(TwilioRestException) as info:
        fake_twilio.client().messages.create(**kwargs)

    assert (info.value.status, info.value.code) == (400, code)
    assert fake_twilio.messages == []


def test_fail_next_fails_exactly_n_creates_then_accepts(fake_twilio: FakeTwilio) -> None:
    client = fake_twilio.client()
    fake_twilio.fail_next(2, status=503)

    for _ in range(2):
        with pytest.raises(TwilioRestException) as info:
            client.messages.create(to=TO, from_=FROM, body="retry me")
        assert (info.value.status, info.value.code) == (503, 20503)
    client.messages.create(to=TO, from_=FROM, body="retry me")

    assert fake_twilio.count(TO, "retry me") == 1
    assert fake_twilio.create_requests == {"error": 2, "accepted": 1}


def test_fail_next_with_twilio_code_picks_its_status(fake_twilio: FakeTwilio) -> None:
    fake_twilio.fail_next(1, code=21610)
    fake_twilio.fail_next(1, code=20429)

    codes = []
    for _ in range(2):
        with pytest.raises(TwilioRestException) as info:
            fake_twilio.client().messages.create(to=TO, from_=FROM, body="x")
        codes.append((info.value.status, info.value.code))

    assert codes == [(400, 21610), (429, 20429)]


def test_block_rejects_unsubscribed_recipient(fake_twilio: FakeTwilio) -> None:
    fake_twilio.block(TO)

    with pytest.raises(TwilioRestException) as info:
        fake_twilio.client().messages.create(to=TO, from_=FROM, body="x")

    assert info.value.code == 21610
    fake_twilio.unblock(TO)
    fake_twilio.client().messages.create(to=TO, from_=FROM, body="x")
    assert fake_twilio.count(TO, "x") == 1


def test_down_refuses_connections_and_up_serves_on_the_same_port(fake_twilio: FakeTwilio) -> None:
    port = fake_twilio.port
    fake_twilio.down()

    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with pytest.raises(requests.ConnectionError):
        fake_twilio.client().messages.create(to=TO, from_=FROM, body="x")
    fake_twilio.up()

    assert fake_twilio.port == port
    fake_twilio.client().messages.create(to=TO, from_=FROM, body="x")
    assert fake_twilio.count(TO, "x") == 1


def test_down_reset_mode_resets_connections(fake_twilio: FakeTwilio) -> None:
    fake_twilio.down("reset")

    with pytest.raises(requests.ConnectionError):
        fake_twilio.client().messages.create(to=TO, from_=FROM, body="x")

    assert fake_twilio.messages == []
    assert fake_twilio.create_requests == {"down": 1}


def test_down_503_mode_answers_service_unavailable(fake_twilio: FakeTwilio) -> None:
    fake_twilio.down("503")

    with pytest.raises(TwilioRestException) as info:
        fake_twilio.client().messages.create(to=TO, from_=FROM, body="x")

    assert (info.value.status, info.value.code) == (503, 20503)
    fake_twilio.up()
    fake_twilio.client().messages.create(to=TO, from_=FROM, body="x")
    assert fake_twilio.count(TO, "x") == 1


def test_slow_without_accept_times_the_client_out_and_sends_nothing(fake_twilio: FakeTwilio) -> None:
    fake_twilio.slow(5, n=1)

    with pytest.raises(requests.Timeout):
        fake_twilio.client(timeout=0.5).messages.create(to=TO, from_=FROM, body="x")

    fake_twilio.wait_until(lambda: fake_twilio.create_requests.get("dropped") == 1, timeout=10, what="dropped")
    assert fake_twilio.messages == []
    fake_twilio.client(timeout=2).messages.create(to=TO, from_=FROM, body="x")
    assert fake_twilio.count(TO, "x") == 1


def test_slow_with_accept_sends_although_the_client_timed_out(fake_twilio: FakeTwilio, sink: WebhookSink) -> None:
    fake_twilio.slow(3, n=1, accept=True)

    with pytest.raises(requests.Timeout):
        fake_twilio.client(timeout=0.5).messages.create(
            to=TO, from_=FROM, body="ambiguous", status_callback=sink.url("/s/?idempotency_key=k-9")
        )

    assert fake_twilio.count_key("k-9") == 1
    fake_twilio.wait_callbacks()
    assert [h.params["MessageStatus"] for h in sink.hooks] == ["queued", "sent", "delivered"]
    found = fake_twilio.client().messages.list(to=TO)
    assert [m.body for m in found] == ["ambiguous"]


def test_counts_by_key_and_to_body_show_duplicates(fake_twilio: FakeTwilio, sink: WebhookSink) -> None:
    client = fake_twilio.client()
    for key in ("k-1", "k-2", "k-2"):
        client.messages.create(
            to=TO, from_=FROM, body=f"body {key}", status_callback=sink.url(f"/s/?idempotency_key={key}")
        )

    assert fake_twilio.count_key("k-1") == 1
    assert fake_twilio.count_key("k-2") == 2
    assert fake_twilio.count(TO, "body k-2") == 2
    assert fake_twilio.duplicates() == {
        "by_key": {"k-2": 2},
        "by_to_body": [{"to": TO, "body": "body k-2", "count": 2}],
    }
    assert fake_twilio.counts()["messages"] == 3
    assert [m["idempotency_key"] for m in fake_twilio.messages] == ["k-1", "k-2", "k-2"]


def test_idempotency_key_header_counts_when_callback_has_none(fake_twilio: FakeTwilio) -> None:
    response = requests.post(
        f"{fake_twilio.base_url}/2010-04-01/Accounts/{SID}/Messages.json",
        data={"To": TO, "From": FROM, "Body": "x"},
        auth=(SID, TOKEN),
        headers={"Idempotency-Key": "hdr-1"},
        timeout=5,
    )

    assert response.status_code == 201
    assert fake_twilio.count_key("hdr-1") == 1


def test_inbound_sms_webhook_is_signed_and_returns_the_reply(fake_twilio: FakeTwilio, sink: WebhookSink) -> None:
    delivery = fake_twilio.send_inbound(sink.url("/api/v1/notifications/twilio/inbound/"), "+15551230009", "C")

    assert delivery.status == 200
    assert delivery.error is None
    assert "<Message>Thanks</Message>" in delivery.body
    (hook,) = sink.hooks
    assert hook.params["Body"] == "C"
    assert hook.params["From"] == "+15551230009"
    assert hook.params["MessageSid"] == delivery.sid
    assert hook.params["AccountSid"] == SID
    assert hook.params["To"] == fake_twilio.default_to
    assert RequestValidator(TOKEN).validate(sink.full_url(hook), hook.params, hook.headers["X-Twilio-Signature"])
    assert fake_twilio.inbound[0]["sid"] == delivery.sid


def test_inbound_to_unreachable_url_reports_error(fake_twilio: FakeTwilio) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    delivery = fake_twilio.send_inbound(f"http://127.0.0.1:{port}/in/", "+15551230009", "STOP", timeout=2)

    assert delivery.status is None
    assert delivery.error is not None


def test_calls_create_fetch_and_completed_callback(fake_twilio: FakeTwilio, sink: WebhookSink) -> None:
    client = fake_twilio.client()

    call = client.calls.create(
        to=TO, from_=FROM, twiml="<Response><Say>Reminder</Say></Response>", status_callback=sink.url("/call/")
    )
    fake_twilio.wait_callbacks()

    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert call.status == "queued"
    assert client.calls(call.sid).fetch().status == "completed"
    (hook,) = sink.hooks
    assert hook.params["CallSid"] == call.sid
    assert hook.params["CallStatus"] == "completed"
    assert RequestValidator(TOKEN).validate(sink.full_url(hook), hook.params, hook.headers["X-Twilio-Signature"])
    with pytest.raises(TwilioRestException) as info:
        client.calls.create(to=TO, from_=FROM)
    assert info.value.code == 21205


def test_fetch_unknown_sid_is_twilio_404(fake_twilio: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as info:
        fake_twilio.client().messages("SM" + "0" * 32).fetch()

    assert (info.value.status, info.value.code) == (404, 20404)


def test_reset_forgets_messages_and_armed_failures(fake_twilio: FakeTwilio) -> None:
    client = fake_twilio.client()
    client.messages.create(to=TO, from_=FROM, body="x")
    fake_twilio.fail_next(5)
    fake_twilio.down()

    fake_twilio.reset()

    assert fake_twilio.messages == []
    assert fake_twilio.create_requests == {}
    client.messages.create(to=TO, from_=FROM, body="x")
    assert fake_twilio.count(TO, "x") == 1


def test_admin_api_on_the_api_port_steers_the_fake(fake_twilio: FakeTwilio) -> None:
    base = f"{fake_twilio.base_url}/_fake"
    assert requests.post(f"{base}/fail_next", json={"n": 1, "code": 21610}, timeout=5).json() == {"ok": True}

    with pytest.raises(TwilioRestException):
        fake_twilio.client().messages.create(to=TO, from_=FROM, body="x")
    fake_twilio.client().messages.create(to=TO, from_=FROM, body="x")

    assert requests.get(f"{base}/count", params={"to": TO, "body": "x"}, timeout=5).json() == {"count": 1}
    assert requests.get(f"{base}/state", timeout=5).json()["create_requests"] == {"error": 1, "accepted": 1}
    assert requests.post(f"{base}/nope", json={}, timeout=5).status_code == 404
    assert requests.post(f"{base}/slow", json={}, timeout=5).status_code == 400


def test_process_mode_state_file_and_admin_port(tmp_path: Path, sink: WebhookSink) -> None:
    proc = FakeTwilioProcess(
        state_file=tmp_path / "twilio.json", log_path=tmp_path / "twilio.log", account_sid=SID, auth_token=TOKEN
    )
    try:
        client = twilio_client(proc.base_url, SID, TOKEN, timeout=5)
        client.messages.create(to=TO, from_=FROM, body="p", status_callback=sink.url("/s/?idempotency_key=proc-1"))
        proc.admin.post("wait_callbacks", timeout=10)
        assert proc.admin.get("count", key="proc-1") == {"count": 1}
        assert len(sink.hooks) == 3

        proc.admin.post("down")
        with pytest.raises(requests.ConnectionError):
            client.messages.create(to=TO, from_=FROM, body="q")
        assert proc.admin.get("state")["mode"] == "refuse"
        proc.admin.post("up")
        client.messages.create(to=TO, from_=FROM, body="q")

        def counted() -> bool:
            state = proc.state()
            return state["messages"] == 2 and state["by_key"] == {"proc-1": 1}

        wait_until(counted, timeout=10, what="the state file to show both messages")
    finally:
        proc.stop()
    assert proc.proc.returncode == 0
    final = proc.state()
    assert final["messages"] == 2
    assert final["duplicates"] == {"by_key": {}, "by_to_body": []}
