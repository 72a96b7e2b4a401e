"""HTTP through the project's ASGI handler (config/asgi.py): each request's sync work in one thread, in order, with
its database connection back in the pool when the request is done; streamed files sent whole.

Driven in-process with channels' HttpCommunicator against the real handler, database and Redis."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import django.contrib.admin
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.conf import settings as django_settings
from django.core import signals
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.test import APIClient

from config.asgi import django_asgi_app
from tests.conftest import csrf_login
from tests.factories import PatientFactory, care_team_join

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
ADMIN_CSS = Path(django.contrib.admin.__file__).parent / "static" / "admin" / "css" / "base.css"


class Recorder:
    """The thread and order of the request signals."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def started(self, **_: Any) -> None:
        self.events.append(("started", threading.get_ident()))

    def finished(self, **_: Any) -> None:
        self.events.append(("finished", threading.get_ident()))


@pytest.fixture
def recorder() -> Any:
    recorder = Recorder()
    signals.request_started.connect(recorder.started)
    signals.request_finished.connect(recorder.finished)
    yield recorder
    signals.request_started.disconnect(recorder.started)
    signals.request_finished.disconnect(recorder.finished)


def pool_available() -> tuple[int, int]:
    """(connections in the pool, connections idle in it) after this thread gives its own back."""
    connection.close()
    stats = connection.pool.get_stats()
    return stats["pool_size"], stats["pool_available"]


async def get(path: str, cookie: str = "") -> dict[str, Any]:
    """One GET through the handler; the status and the whole body (streamed bodies may end with an empty
    message without a ``body`` key, as ASGI allows)."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "headers": [(b"host", b"testserver")] + ([(b"cookie", cookie.encode())] if cookie else []),
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(django_asgi_app, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(timeout=10)
    body = b""
    while True:
        message = await communicator.receive_output(timeout=10)
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await communicator.wait(timeout=10)
    return {"status": start["status"], "body": body}


async def test_an_api_request_runs_its_signals_once_each_in_one_worker_thread(recorder: Recorder) -> None:
    response = await get("/api/v1/auth/csrf/")

    assert response["status"] == 200
    assert b"csrfToken" in response["body"]
    assert [name for name, _ in recorder.events] == ["started", "finished"]
    threads = {thread for _, thread in recorder.events}
    assert len(threads) == 1
    assert threading.get_ident() not in threads  # not on the event loop's thread


async def test_a_request_that_uses_the_database_gives_its_connection_back_to_the_pool() -> None:
    await get("/api/v1/health/")  # reads the database (503 here: no Celery worker answers in this test)

    size, available = await sync_to_async(pool_available)()
    assert size >= 1
    assert available == size


async def test_a_streamed_file_is_sent_whole_and_closed_once(recorder: Recorder) -> None:
    response = await get("/static/admin/css/base.css")  # WhiteNoise: a streaming FileResponse

    assert response["status"] == 200
    assert response["body"] == ADMIN_CSS.read_bytes()
    assert [name for name, _ in recorder.events] == ["started", "finished"]  # finished once the body was sent


def test_a_streamed_download_that_read_the_database_gives_its_connection_back(
    settings: Any, tmp_path: Path, doctor: Any
) -> None:
    """A document download reads (and audits) in the database, then streams the file: the worker thread's
    connection must be back in the pool although the response is closed later, after the last chunk."""
    settings.DOCUMENT_STORAGE_ROOT = tmp_path / "documents"
    chart = PatientFactory()
    care_team_join(patient=chart, member=doctor)
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, doctor.username).status_code == 200
    uploaded = client.post(
        f"/api/v1/ehr/patients/{chart.pk}/documents/",
        {"type": "lab-report", "title": "Panel", "file": SimpleUploadedFile("panel.pdf", PDF, "application/pdf")},
        format="multipart",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert uploaded.status_code == 201, uploaded.content
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value

    response = async_to_sync(get)(
        f"/api/v1/ehr/documents/{uploaded.json()['id']}/content/",
        cookie=f"{django_settings.SESSION_COOKIE_NAME}={session}",
    )

    assert response["status"] == 200
    assert response["body"] == PDF
    size, available = pool_available()
    assert available == size


async def test_an_error_response_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="django.request"):
        response = await get("/api/v1/scheduling/appointments/999999999/")

    assert response["status"] in (401, 403, 404)
    logged = [r for r in caplog.records if r.name == "django.request"]
    assert len(logged) == 1
