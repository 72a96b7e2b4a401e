"""The production stack, checked without a Docker engine.

compose.yaml, the Dockerfile, the Caddyfile and the coturn configuration are read statically. The promises that
matter most are then checked by running our own code with exactly what compose would hand it: the environment
of the Django services is enough for the production settings to load and for ``manage.py check --deploy`` to
pass, and the web container's healthcheck passes against a real daphne started with that environment.

Nothing here needs a database: the compose environment points at the host ``postgres``, which does not exist on
a developer machine, so anything that tried to connect would fail loudly.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from tests.support.servers import port_open, wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
TURN_CONF = ROOT / "turn" / "turnserver.conf"
TURN_LOCAL_CONF = ROOT / "turn" / "turnserver.local.conf"
TURN_SCRIPT = ROOT / "scripts" / "turn.sh"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"

SERVICES = {"postgres", "redis", "migrate", "web", "worker", "beat", "coturn", "proxy"}
DJANGO_SERVICES = ("migrate", "web", "worker", "beat")
# beat has no cheap, meaningful probe (it only sends); coturn runs on the host network and its image has no client
# to probe it with. migrate is one-shot.
HEALTHCHECKED = ("postgres", "redis", "web", "worker", "proxy")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|_KEY$", re.IGNORECASE)

SETTINGS_PROBE = (
    "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['HOST'])"
)
PYTHON_BIN = str(Path(sys.executable).parent)
SUBPROCESS_PATH = f"{PYTHON_BIN}:/usr/local/bin:/usr/bin:/bin"

# --- Compose variable interpolation ----------------------------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_REQUIRED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):?\?")


class MissingVariable(Exception):
    pass


def interpolate(value: str, supplied: Mapping[str, str]) -> str:
    """Substitute compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``, ``${VAR:+alt}`` and ``$$``."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"] or "", match["arg"] or ""
        current = supplied.get(name)
        unset = current is None or (op.startswith(":") and current == "")
        if op in (":-", "-"):
            return arg if unset else str(current)
        if op in (":?", "?"):
            if unset:
                raise MissingVariable(f"{name}: {arg}")
            return str(current)
        if op in (":+", "+"):
            return "" if unset else arg
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def interpolate_tree(node: Any, supplied: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, supplied)
    if isinstance(node, list):
        return [interpolate_tree(item, supplied) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, supplied) for key, value in node.items()}
    return node


def random_secret(length: int = 60) -> str:
    alphabet = string.ascii_letters + string.digits + "-_!@%^&*(=+)"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def dummy_value(name: str) -> str:
    """What an operator would export: a real-looking value for each variable compose insists on."""
    if name == "CONSULTA_DOMAIN":
        return "consulta.example.org"
    if name == "DJANGO_SECRET_KEY":
        return random_secret()
    if name == "TURN_SECRET":
        return secrets.token_hex(32)
    if name == "FIELD_ENCRYPTION_KEYS":
        return f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    return "dummy-" + secrets.token_hex(12)


# --- Fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE.read_text()


@pytest.fixture(scope="module")
def raw(compose_text: str) -> dict[str, Any]:
    """compose.yaml as written (anchors resolved, variables not substituted)."""
    document = yaml.safe_load(compose_text)
    assert isinstance(document, dict)
    return document


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)


@pytest.fixture(scope="module")
def required_vars(raw: dict[str, Any]) -> set[str]:
    """Variables compose insists on (``${VAR:?message}``) anywhere in the file's values (comments do not count)."""
    return {match["name"] for text in strings(raw) for match in _REQUIRED.finditer(text)}


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], required_vars: set[str]) -> dict[str, Any]:
    """compose.yaml as compose would run it for an operator who exported only the required variables."""
    supplied = {name: dummy_value(name) for name in required_vars}
    resolved = interpolate_tree(raw, supplied)
    assert isinstance(resolved, dict)
    return resolved


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def web_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {key: str(value) for key, value in services["web"]["environment"].items()}


def subprocess_env(compose_env: Mapping[str, str]) -> dict[str, str]:
    """Exactly the container's environment, plus how to find our interpreter and code. Nothing else leaks in."""
    return {**compose_env, "PATH": SUBPROCESS_PATH, "PYTHONPATH": str(ROOT)}


def run_python(code: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        ):
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --- The services ------------------------------------------------------------------------------------------------


def test_compose_defines_every_production_service(services: dict[str, Any]) -> None:
    assert set(services) >= SERVICES, f"missing: {sorted(SERVICES - set(services))}"


def test_every_service_has_an_image_or_a_build(services: dict[str, Any]) -> None:
    lacking = [name for name, service in services.items() if "image" not in service and "build" not in service]
    assert lacking == []


def test_every_service_restarts_unless_stopped_except_the_one_shot_migrate(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name == "migrate":
            assert service.get("restart", "no") == "no"
        else:
            assert service.get("restart") == "unless-stopped", name


def test_django_services_share_one_environment_from_the_anchor(raw: dict[str, Any]) -> None:
    anchor = raw["x-django-env"]
    assert anchor["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    for name in DJANGO_SERVICES:
        environment = raw["services"][name]["environment"]
        assert isinstance(environment, dict), f"{name}: use the mapping anchor, not a list"
        missing = {key: value for key, value in anchor.items() if environment.get(key) != value}
        assert missing == {}, f"{name} does not use x-django-env for {sorted(missing)}"


def test_django_services_run_the_one_application_image(services: dict[str, Any]) -> None:
    images = {services[name].get("image") for name in DJANGO_SERVICES}
    assert len(images) == 1
    assert all("build" in services[name] for name in DJANGO_SERVICES)


def test_no_secret_has_a_literal_value(raw: dict[str, Any], compose_text: str) -> None:
    for name, service in raw["services"].items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                assert "${" in str(value), f"{name}.{key} has a literal value"
    for match in re.finditer(r"://[^:/@\s]+:([^@\s]+)@", compose_text):
        assert match.group(1).startswith("${"), "a password inside a URL must come from the environment"
    for match in re.finditer(r"--static-auth-secret=(\S+)", compose_text):
        assert match.group(1).startswith('"${') or match.group(1).startswith("${")


def test_long_running_services_have_healthchecks(services: dict[str, Any]) -> None:
    for name in HEALTHCHECKED:
        healthcheck = services[name].get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        assert healthcheck.get("test"), name
        assert not healthcheck.get("disable"), name


def test_postgres_keeps_the_record_in_a_named_volume(services: dict[str, Any], compose: dict[str, Any]) -> None:
    postgres = services["postgres"]
    assert str(postgres["image"]).startswith("postgres:16")
    mounts = [str(volume).split(":") for volume in postgres.get("volumes", [])]
    data = [mount for mount in mounts if mount[1] == "/var/lib/postgresql/data"]
    assert data, "no volume on /var/lib/postgresql/data"
    assert data[0][0] in (compose.get("volumes") or {}), "PostgreSQL data must live in a named volume"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_redis_is_version_7_with_a_ping_healthcheck(services: dict[str, Any]) -> None:
    assert str(services["redis"]["image"]).startswith("redis:7")
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


def test_migrate_runs_once_after_postgres_is_healthy(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_web_runs_daphne_with_at_least_two_replicas_by_default(services: dict[str, Any]) -> None:
    web = services["web"]
    every_interface = "0.0.0.0"  # noqa: S104 -- inside the container; only the proxy reaches it
    assert web["command"] == [
        "daphne",
        "-b",
        every_interface,
        "-p",
        "8000",
        "--proxy-headers",
        "config.asgi:application",
    ]
    assert int(web["deploy"]["replicas"]) >= 2
    assert "ports" not in web, "replicas cannot share a published port; the proxy reaches them"


def test_web_replicas_follow_web_replicas_variable(raw: dict[str, Any]) -> None:
    assert int(interpolate(str(raw["services"]["web"]["deploy"]["replicas"]), {"WEB_REPLICAS": "5"})) == 5


def test_django_processes_start_after_migrations_and_redis(services: dict[str, Any]) -> None:
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_worker_and_beat_commands(services: dict[str, Any]) -> None:
    assert services["worker"]["command"] == ["celery", "-A", "config", "worker", "-l", "info", "--concurrency", "2"]
    beat = services["beat"]["command"]
    assert beat[:4] == ["celery", "-A", "config", "beat"]
    assert "--schedule" in beat
    assert beat[beat.index("--schedule") + 1].startswith("/tmp/")  # noqa: S108 -- the one writable place


def test_worker_healthcheck_pings_only_its_own_node(services: dict[str, Any]) -> None:
    test = services["worker"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL", "the shell must expand $HOSTNAME inside the container"
    assert "celery -A config inspect ping" in test[1]
    assert "-d celery@$HOSTNAME" in test[1]


def test_web_healthcheck_is_liveness_only(services: dict[str, Any]) -> None:
    script = " ".join(services["web"]["healthcheck"]["test"])
    assert "127.0.0.1:8000" in script
    assert "/api/v1/health/" not in script, (
        "health answers 503 when Celery is down; that is not a reason to restart web"
    )


def test_web_healthcheck_passes_against_daphne_started_with_the_compose_environment(
    services: dict[str, Any], web_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    command = [part.replace("0.0.0.0", "127.0.0.1") for part in services["web"]["command"]]  # noqa: S104
    command[command.index("-p") + 1] = str(port)
    test = services["web"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    probe = [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in test[1:]]
    env = subprocess_env(web_env)

    log = tmp_path / "daphne.log"
    with log.open("w") as output:
        daphne = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:

        def listening() -> bool:
            assert daphne.poll() is None, f"daphne exited:\n{tail(log.read_text())}"
            return port_open(port)

        wait_until(listening, timeout=60, what="daphne to listen")
        result = subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, f"{result.stderr}\n{tail(log.read_text())}"
    finally:
        stop(daphne)

    down = subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert down.returncode != 0, "the healthcheck must fail when daphne does not answer"


def test_proxy_terminates_tls_and_uses_the_caddyfile(services: dict[str, Any]) -> None:
    proxy = services["proxy"]
    assert str(proxy["image"]).startswith("caddy:2")
    published = {str(port).split(":")[-1] for port in proxy["ports"]}
    assert {"443", "80"} <= published
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    targets = {str(volume).split(":")[1] for volume in proxy["volumes"]}
    assert {"/data", "/config"} <= targets, "certificates must survive re-creating the container"
    assert proxy["environment"]["CONSULTA_DOMAIN"] == "consulta.example.org"


def test_caddyfile_balances_the_web_replicas_and_sets_forwarded_proto() -> None:
    caddyfile = CADDYFILE.read_text()
    assert "{$CONSULTA_DOMAIN}" in caddyfile
    assert "reverse_proxy" in caddyfile
    assert re.search(r"dynamic a web 8000", caddyfile), "each replica must be its own upstream"
    assert "header_up X-Forwarded-Proto" in caddyfile


def test_coturn_uses_the_production_config_and_the_secret_from_the_environment(
    services: dict[str, Any], raw: dict[str, Any]
) -> None:
    coturn = services["coturn"]
    assert str(coturn["image"]).startswith("coturn/coturn")
    assert coturn.get("network_mode") == "host" or any("3478" in str(port) for port in coturn.get("ports", []))
    command = raw["services"]["coturn"]["command"]
    assert command[:2] == ["-c", "/etc/coturn/turnserver.conf"]
    assert any(part.startswith("--static-auth-secret=${TURN_SECRET") for part in command)
    assert "./turn/turnserver.conf:/etc/coturn/turnserver.conf:ro" in coturn["volumes"]


# --- TURN configuration ------------------------------------------------------------------------------------------


def conf_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def denied_ranges(lines: list[str]) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]]:
    ranges = []
    for line in lines:
        if line.startswith("denied-peer-ip="):
            low, _, high = line.split("=", 1)[1].partition("-")
            ranges.append((ipaddress.ip_address(low), ipaddress.ip_address(high or low)))
    return ranges


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.17.0.1",
        "172.31.255.254",
        "192.168.1.10",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 -- an address the relay must refuse, not a bind
        "::1",
        "fd00::1",
        "fc00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
    ],
)
def test_production_turn_config_refuses_internal_peers(address: str) -> None:
    ip = ipaddress.ip_address(address)
    ranges = denied_ranges(conf_lines(TURN_CONF))
    assert any(low.version == ip.version and low <= ip <= high for low, high in ranges)


def test_production_turn_config_allows_public_peers() -> None:
    ranges = denied_ranges(conf_lines(TURN_CONF))
    for address in ("8.8.8.8", "2001:4860:4860::8888"):
        ip = ipaddress.ip_address(address)
        assert not any(low.version == ip.version and low <= ip <= high for low, high in ranges)


def test_production_turn_config_uses_rest_api_auth_without_a_secret_in_the_file() -> None:
    lines = conf_lines(TURN_CONF)
    for directive in ("use-auth-secret", "realm=consulta", "fingerprint", "no-cli", "no-multicast-peers"):
        assert directive in lines
    for directive in ("no-tlsv1", "no-tlsv1_1", "stale-nonce=600", "min-port=49160", "max-port=49200"):
        assert directive in lines
    assert "listening-port=3478" in lines
    assert "tls-listening-port=5349" in lines
    assert not any(line.startswith("static-auth-secret") for line in lines)
    assert "allow-loopback-peers" not in lines
    assert "log-file=stdout" in lines


def test_local_turn_config_is_for_loopback_only() -> None:
    lines = conf_lines(TURN_LOCAL_CONF)
    for directive in ("use-auth-secret", "realm=consulta", "allow-loopback-peers", "no-cli", "no-tls"):
        assert directive in lines
    assert "min-port=49300" in lines
    assert "max-port=49400" in lines
    assert not any(line.startswith(("static-auth-secret", "listening-port", "pidfile")) for line in lines)
    script = TURN_SCRIPT.read_text()
    assert "--listening-ip=127.0.0.1" in script
    assert "turn/turnserver.local.conf" in script
    assert os.access(TURN_SCRIPT, os.X_OK)


def stun_binding_request() -> tuple[bytes, bytes]:
    transaction = secrets.token_bytes(12)
    return b"\x00\x01\x00\x00\x21\x12\xa4\x42" + transaction, transaction


@pytest.fixture
def turn_script(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "TURN_PORT": str(port),
        "TURN_SECRET": "test-turn-secret",
        "TURN_PIDFILE": str(tmp_path / "turnserver.pid"),
    }
    process = subprocess.Popen(
        [str(TURN_SCRIPT)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    try:
        yield process, port
    finally:
        stop(process)


def test_local_turn_script_answers_stun_on_loopback(turn_script: tuple[subprocess.Popen[str], int]) -> None:
    assert shutil.which("turnserver"), "coturn is required for the test run (make test installs it)"
    process, port = turn_script
    deadline = time.monotonic() + 20
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(0.5)
        while True:
            assert process.poll() is None, "turnserver exited"
            request, transaction = stun_binding_request()
            udp.sendto(request, ("127.0.0.1", port))
            try:
                response = udp.recv(2048)
                break
            except OSError:
                assert time.monotonic() < deadline, "no STUN answer within 20 s"
    assert response[:2] == b"\x01\x01", "expected a STUN Binding Success Response"
    assert response[8:20] == transaction


def test_turn_script_idles_when_coturn_is_missing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "dirname", "tail"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    process = subprocess.Popen(
        [str(TURN_SCRIPT)], env={"PATH": str(bin_dir)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "coturn not installed; TURN disabled"
        # The promise is "keeps running" (honcho stops everything when one process exits): it must not exit.
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=0.5)
    finally:
        stop(process)


# --- The image -----------------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_builds_the_spa_in_node_and_copies_only_dist() -> None:
    instructions = dockerfile_instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) >= 2
    node = next(stage for stage in stages if stage.startswith("node:"))
    node_stage = node.split()[-1]
    assert any(stage.startswith("python:3.11") for stage in stages)
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    assert any(rest.startswith(f"--from={node_stage} ") and "/dist" in rest for rest in copies)
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "npm ci" in runs
    assert "npm run build" in runs
    assert "pip install --no-cache-dir -r requirements/base.txt" in runs
    assert "collectstatic --noinput" in runs


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [rest for keyword, rest in dockerfile_instructions() if keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert "--uid 10001" in DOCKERFILE.read_text()


def test_dockerfile_serves_daphne_on_port_8000() -> None:
    instructions = dockerfile_instructions()
    assert ("EXPOSE", "8000") in instructions
    cmd = [rest for keyword, rest in instructions if keyword == "CMD"][-1]
    assert "daphne" in cmd
    assert "config.asgi:application" in cmd


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    patterns = set(conf_lines(ROOT / ".dockerignore"))
    assert {".venv", ".data", ".git", "frontend/dist", "staticfiles", "test-results", ".env"} <= patterns
    assert patterns & {"node_modules", "**/node_modules"}
    assert patterns & {"__pycache__", "**/__pycache__"}


# --- The compose environment against the production settings --------------------------------------------------


def test_compose_environment_satisfies_the_production_settings(web_env: dict[str, str]) -> None:
    result = run_python(
        "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['HOST'])",
        subprocess_env(web_env),
    )
    assert result.returncode == 0, tail(result.stderr)
    assert result.stdout.strip() == "postgres"


def test_production_settings_refuse_the_compose_environment_without_a_secret_key(web_env: dict[str, str]) -> None:
    env = subprocess_env(web_env)
    del env["DJANGO_SECRET_KEY"]
    result = run_python(SETTINGS_PROBE, env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("name", ["FIELD_ENCRYPTION_KEYS", "SEARCH_HASH_KEY"])
def test_production_settings_refuse_to_start_without_the_identifier_keys(web_env: dict[str, str], name: str) -> None:
    env = subprocess_env(web_env)
    del env[name]
    result = run_python(SETTINGS_PROBE, env)
    assert result.returncode != 0
    assert name in result.stderr


def test_check_refuses_a_field_encryption_key_that_is_not_a_fernet_key(web_env: dict[str, str]) -> None:
    env = {**subprocess_env(web_env), "FIELD_ENCRYPTION_KEYS": "not-a-fernet-key"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode != 0
    assert "ehr.E001" in result.stderr + result.stdout


def test_compose_environment_passes_check_deploy(web_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=subprocess_env(web_env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "OperationalError" not in output, f"check --deploy tried to reach the database:\n{tail(output)}"
    assert result.returncode == 0, tail(output)


def test_every_required_variable_is_documented_for_operators(required_vars: set[str]) -> None:
    doc = OPERATIONS_DOC.read_text()
    undocumented = sorted(name for name in required_vars if f"`{name}`" not in doc)
    assert undocumented == []
