"""Browser tests: the system Chromium (never a downloaded one) driven by Playwright against a real daphne."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from ehr.services.demo import demo_seed
from scheduling.services.demo import demo_seed_scheduling
from telehealth.services.demo import demo_seed_telehealth
from tests.support.servers import ROOT, Daphne, Relay, Turn

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
DEMO_PASSWORD = "consulta-demo"
T = TypeVar("T")


def off_loop(fn: Callable[[], T]) -> T:
    """Run database work in a worker thread: Playwright's sync API keeps an event loop running in this one,
    and Django (rightly) refuses ORM calls from a thread with a running loop."""
    from django.db import connection

    def run() -> T:
        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            # pytest-django runs tests that use a fixture named `db` first; a browser test doing so would commit the
            # demo data before the database tests that expect empty tables. Name helpers otherwise (e.g. `run_db`).
            if {"db", "transactional_db"} & set(getattr(item, "fixturenames", ())):
                raise pytest.UsageError(
                    f"{item.nodeid}: browser tests must not use a fixture named db/transactional_db "
                    "(use off_loop with django_db_blocker, e.g. a `run_db` fixture)"
                )


@pytest.fixture(scope="session")
def browser_database(django_db_setup, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The test database. pytest-django creates it only for tests marked django_db, and browser tests are not
    (they must not run inside a test transaction the server cannot see); when only browser tests were collected,
    create it here rather than fall back on the development database."""
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    if settings.DATABASES["default"]["NAME"].startswith("test_"):
        yield
        return
    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=0)


@pytest.fixture(scope="session")
def demo_data(browser_database, django_db_blocker) -> None:  # type: ignore[no-untyped-def]
    """Demo data committed to the test database, for the server process to see."""
    with django_db_blocker.unblock():
        off_loop(lambda: demo_seed(password=DEMO_PASSWORD))
        off_loop(demo_seed_scheduling)
        off_loop(demo_seed_telehealth)


@pytest.fixture(scope="session")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Turn]:
    """A real coturn for the video tests, with a secret of this run's own."""
    proc = Turn(tmp_path_factory.mktemp("coturn"), secret=secrets.token_hex(16))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def server(demo_data, turn: Turn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daphne]:
    if not (ROOT / "frontend" / "dist" / "index.html").is_file():
        pytest.fail("frontend/dist is not built: run `make frontend` (make test does it)")
    proc = Daphne(tmp_path_factory.mktemp("browser-server"), name="daphne-browser", env=turn.django_env())
    yield proc
    proc.stop()


# Module scope: the relay joins the channel-layer group `telehealth.relay` of the test Redis prefix, and a relay
# left running for the rest of the session would answer the relay tests' signals too (tests/signaling/relay).
@pytest.fixture(scope="module")
def relay(server: Daphne, turn: Turn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    """The media relay process (issue 7) on the test database and Redis, reaching browsers through the coturn."""
    proc = Relay(tmp_path_factory.mktemp("relay"), env=turn.django_env())
    yield proc
    proc.stop()


# Module scope, not session: Playwright's sync API keeps an event loop running in the main thread while it is
# open, which would break async tests that pytest happens to run after the browser modules.
@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    yield ctx
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        out = Path(ROOT / "test-results")
        out.mkdir(exist_ok=True)
        for i, page in enumerate(ctx.pages):
            page.screenshot(path=str(out / f"{request.node.name}-{i}.png"))
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def sign_in(page: Page, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
