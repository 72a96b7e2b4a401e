"""Our own processes, started for real: daphne serving config.asgi and a Celery worker, on the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_database_url() -> str:
    """URL of the database pytest-django created, for child processes to share."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = urllib.parse.quote(db.get("HOST") or "127.0.0.1", safe="")  # a socket directory is a path
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=test_database_url(),
        TEST_REDIS_URL=settings.REDIS_URL,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Process:
    """A child process with its output kept in a log file for failure reports."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Daphne(Process):
    def __init__(
        self, log_dir: Path, port: int | None = None, name: str = "daphne", env: dict[str, str] | None = None
    ) -> None:
        self.port = port or free_port()
        super().__init__(
            name,
            [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            child_env(**(env or {})),
            log_dir,
        )
        self.wait_ready()

    def wait_ready(self) -> None:
        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            return port_open(self.port)

        wait_until(ready, timeout=30, what=f"{self.name} on port {self.port}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


class CeleryWorker(Process):
    def __init__(self, log_dir: Path) -> None:
        super().__init__(
            "celery-worker",
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "--pool",
                "solo",
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
                "-n",
                f"test-{os.getpid()}@%h",
            ],
            child_env(),
            log_dir,
        )


class Turn(Process):
    """coturn on 127.0.0.1 with ``turn/turnserver.local.conf`` (TURN REST shared secret, loopback peers allowed),
    on a free port and a relay port range of its own so it never collides with a ``make run`` coturn."""

    def __init__(self, log_dir: Path, secret: str, name: str = "coturn", port: int | None = None) -> None:
        self.port = port or free_port()
        self.secret = secret
        self.log_dir = log_dir
        self.base_name = name
        self.starts = 0
        self._start()

    def _start(self) -> None:
        self.starts += 1
        name = self.base_name if self.starts == 1 else f"{self.base_name}-{self.starts}"
        low = 50000 + (self.port % 100) * 100
        super().__init__(
            name,
            [
                "turnserver",
                "-c",
                str(ROOT / "turn" / "turnserver.local.conf"),
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                f"--listening-port={self.port}",
                f"--static-auth-secret={self.secret}",
                f"--min-port={low}",
                f"--max-port={low + 99}",
                f"--pidfile={self.log_dir / (name + '.pid')}",
                "--log-file=stdout",
            ],
            dict(os.environ),
            self.log_dir,
        )

        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            return port_open(self.port)

        wait_until(ready, timeout=15, what=f"coturn on port {self.port}")

    def restart(self) -> None:
        """Stop coturn (every relay allocation dies with it) and start it again on the same port and secret."""
        self.stop()
        self._start()

    def django_env(self) -> dict[str, str]:
        """Settings that point Consulta's ICE-server API at this coturn."""
        return {
            "TURN_URLS": f"turn:127.0.0.1:{self.port}?transport=udp,turn:127.0.0.1:{self.port}?transport=tcp",
            "STUN_URLS": f"stun:127.0.0.1:{self.port}",
            "TURN_SECRET": self.secret,
        }


class Relay(Process):
    """The media relay, ``manage.py relay``, as its own process on the test database and Redis. Ready once its
    heartbeat (``<prefix>:relay:heartbeat`` in Redis) names this process's pid. ``env`` adds settings, e.g. a
    ``Turn``'s ``django_env()``; without TURN_URLS/STUN_URLS the relay offers host candidates only."""

    def __init__(self, log_dir: Path, name: str = "relay", env: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.base_name = name
        self.extra_env = {"STUN_URLS": "", "TURN_URLS": "", **(env or {})}
        self.starts = 0
        self._start()

    def _start(self) -> None:
        self.starts += 1
        name = self.base_name if self.starts == 1 else f"{self.base_name}-{self.starts}"
        super().__init__(name, [sys.executable, "manage.py", "relay"], child_env(**self.extra_env), self.log_dir)
        self.wait_ready()

    def heartbeat(self) -> dict[str, object] | None:
        import json

        import redis

        from signaling.relay.server import relay_heartbeat_key

        raw = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).get(relay_heartbeat_key())
        return json.loads(raw) if raw else None

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            beat = self.heartbeat()
            return beat is not None and beat.get("pid") == self.proc.pid

        wait_until(ready, timeout=timeout, what=f"{self.name}'s heartbeat", interval=0.1)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as in a crash."""
        self.stop(signal.SIGKILL)

    def restart(self, sig: int = signal.SIGKILL) -> None:
        """Stop the relay (by default as a crash: every peer connection is lost) and start a new one."""
        self.stop(sig)
        self._start()
