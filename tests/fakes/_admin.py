"""Plumbing shared by the fakes: the ``/_fake/`` admin HTTP API, the JSON state file, a client for both, masking.

The admin API is JSON over HTTP on loopback, without authentication (the fakes only ever listen on 127.0.0.1):
``GET /_fake/<name>`` reads, ``POST /_fake/<name>`` with a JSON object body acts. Unknown names answer 404, bad
arguments 400 with ``{"error": ...}``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

AdminGet = Callable[[dict[str, str]], Any]
AdminPost = Callable[[dict[str, Any]], Any]


class AdminRoutes:
    """Named admin actions: ``gets[name](query)`` and ``posts[name](json_body)`` return JSON-able values."""

    def __init__(self) -> None:
        self.gets: dict[str, AdminGet] = {}
        self.posts: dict[str, AdminPost] = {}

    def handle(self, method: str, name: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        table = self.gets if method == "GET" else self.posts
        action = table.get(name)
        if action is None:
            return 404, {"error": f"no admin action {method} /_fake/{name}"}
        try:
            if method == "GET":
                return 200, action(query)
            args = json.loads(body or b"{}")
            if not isinstance(args, dict):
                raise ValueError("body must be a JSON object")
            return 200, action(args)
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"error": f"{type(exc).__name__}: {exc}"}


def write_json(
    handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)


class QuietServer(ThreadingHTTPServer):
    """Threaded HTTP server whose handler threads never block shutdown (a slowed request may still be waiting)."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class AdminServer:
    """An always-up HTTP listener serving only ``/_fake/`` (used in process mode, where the API port can go down)."""

    def __init__(self, routes: AdminRoutes, port: int = 0) -> None:
        outer = routes

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                path, _, qs = self.path.partition("?")
                match = re.fullmatch(r"/_fake/([a-z_]+)/?", path)
                if match is None:
                    write_json(self, 404, {"error": "admin API lives under /_fake/"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = outer.handle(self.command, match.group(1), parse_query(qs), body)
                write_json(self, status, payload)

            do_GET = _serve  # noqa: N815 - BaseHTTPRequestHandler dispatches on do_<METHOD>
            do_POST = _serve  # noqa: N815

        self.server = QuietServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-admin", daemon=True)

    def start(self) -> AdminServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def parse_query(qs: str) -> dict[str, str]:
    """Last value wins; the fakes' filters are all single-valued."""
    from urllib.parse import parse_qsl

    return dict(parse_qsl(qs, keep_blank_values=True))


class StateFileWriter:
    """Mirrors ``snapshot()`` into ``path`` (atomically: temp file + rename) at most every ``interval`` seconds.

    Call :meth:`touch` after every change; :meth:`flush` writes now (on shutdown). Another process reads the file
    with :func:`read_state`; it lags the live state by at most ``interval`` seconds, so readers wait on a condition.
    """

    def __init__(self, path: str | os.PathLike[str], snapshot: Callable[[], dict[str, Any]], interval: float = 0.1):
        self.path = Path(path)
        self._snapshot = snapshot
        self._interval = interval
        self._dirty = threading.Event()
        self._stopped = threading.Event()
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="fake-state-file", daemon=True)

    def start(self) -> StateFileWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush()
        self._thread.start()
        return self

    def touch(self) -> None:
        self._dirty.set()

    def flush(self) -> None:
        with self._write_lock:
            self._dirty.clear()
            data = json.dumps(self._snapshot(), indent=1)
            fd, tmp = tempfile.mkstemp(prefix=self.path.name, dir=self.path.parent)
            with os.fdopen(fd, "w") as fh:
                fh.write(data)
            os.replace(tmp, self.path)

    def stop(self) -> None:
        self._stopped.set()
        self._dirty.set()
        self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._dirty.wait()
            if self._stopped.is_set():
                return
            self.flush()
            self._stopped.wait(self._interval)


def read_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The last state a fake process wrote (see :class:`StateFileWriter`)."""
    result: dict[str, Any] = json.loads(Path(path).read_text())
    return result


class AdminClient:
    """Steers a fake running as its own process through its admin API (``base_url`` like http://127.0.0.1:P)."""

    def __init__(self, base_url: str, timeout: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, name: str, **query: str) -> Any:
        from urllib.parse import urlencode

        qs = f"?{urlencode(query)}" if query else ""
        return self._call(urllib.request.Request(f"{self.base_url}/_fake/{name}{qs}"))  # noqa: S310 - loopback http

    def post(self, name: str, **args: Any) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{self.base_url}/_fake/{name}",
            data=json.dumps(args).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._call(request)

    def _call(self, request: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - loopback only
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"admin call {request.full_url} failed: {exc.code} {exc.read()!r}") from exc


class FakeProcess:
    """A fake started as ``python -m <module> ...``; ready once its state file names its ports.

    ``admin`` is an :class:`AdminClient` on the always-up admin port. ``stop()`` sends SIGTERM (the fake writes its
    final state file) and waits.
    """

    def __init__(self, module: str, args: list[str], state_file: Path, log_path: Path, timeout: float = 20) -> None:
        self.state_file = Path(state_file)
        self.state_file.unlink(missing_ok=True)
        self.log_path = Path(log_path)
        self._log = self.log_path.open("wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--state-file", str(self.state_file)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{module} exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{module} did not become ready in {timeout}s")
            time.sleep(0.05)
        self.admin = AdminClient(f"http://127.0.0.1:{self.state()['admin_port']}")

    def _ready(self) -> bool:
        try:
            return bool(self.state().get("ready"))
        except (OSError, ValueError):
            return False

    def state(self) -> dict[str, Any]:
        return read_state(self.state_file)

    @property
    def port(self) -> int:
        return int(self.state()["port"])

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def mask(recipient: str) -> str:
    """``+15551234567`` -> ``+1*******567``; ``ana@example.org`` -> ``a***@example.org``. For log lines only."""
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(recipient) <= 5:
        return "*" * len(recipient)
    return recipient[:2] + "*" * (len(recipient) - 5) + recipient[-3:]


def first_words(text: str, n: int = 3) -> str:
    words = text.split()
    return " ".join(words[:n]) + (" …" if len(words) > n else "")


def say(line: str) -> None:
    """One log line on stdout, flushed (process mode runs under honcho)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def serve_until_signalled(fake: Any, routes: AdminRoutes, admin_port: int, state_file: str | None, banner: str) -> int:
    """Process mode of a started fake: its /_fake/ admin server, the optional state file mirroring its counts, a
    banner (``{admin}`` is replaced by the admin port), then block until SIGTERM/SIGINT and stop everything."""
    admin = AdminServer(routes, admin_port).start()
    writer: StateFileWriter | None = None
    if state_file:
        writer = StateFileWriter(state_file, lambda: {**fake.snapshot(), "admin_port": admin.port}, interval=0.2)
        fake._listeners.append(writer.touch)
        writer.start()
    say(banner.replace("{admin}", str(admin.port)))

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    fake.stop()
    admin.stop()
    if writer is not None:
        writer.stop()
    return 0
