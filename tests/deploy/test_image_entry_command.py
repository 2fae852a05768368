"""The image's commands, run outside a container exactly as the Dockerfile and compose.yaml say.

The environment is the Dockerfile's ENV lines (``SIMCONFIG_HOST=0.0.0.0`` and the
rest) plus the database URL compose.yaml gives, on a throwaway PostgreSQL
database and a free port; the commands are the ENTRYPOINT with the migrate
service's command, then with the CMD, then the HEALTHCHECK's own command line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from tests.conftest import throwaway_postgres_database
from tests.deploy import images
from tests.e2e import gateway_stack

DOCKERFILE = images.read_dockerfile()
COMPOSE = images.read_compose()
VENV_BIN = Path(sys.executable).parent


def image_environment(database_url: str, port: int, data_dir: Path) -> dict[str, str]:
    """The container's environment, bar what only makes sense inside one.

    The ports are free ones rather than the image's 50051 and 9464 (the machine is
    shared), the data directory a temporary one; the project's virtualenv comes first
    on PATH, where the image has its Python and the `simconfig` script.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMCONFIG_")}
    env.update(DOCKERFILE.env)
    env.update(
        SIMCONFIG_DATABASE_URL=database_url,
        SIMCONFIG_PORT=str(port),
        SIMCONFIG_METRICS_PORT=str(gateway_stack.free_port()),
        SIMCONFIG_DATA_DIR=str(data_dir),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def resolve(argv: list[str], env: dict[str, str]) -> list[str]:
    """argv with its program looked up on PATH and image paths mapped to the checkout."""
    program = shutil.which(argv[0], path=env["PATH"])
    assert program, f"{argv[0]} is not on PATH"
    args = [str(DOCKERFILE.host_path(a) or a) if a.startswith("/") else a for a in argv[1:]]
    return [program, *args]


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        resolve(argv, env), cwd=images.REPO, env=env, capture_output=True, text=True, timeout=120
    )


def healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(DOCKERFILE.healthcheck, env)


def healthcheck_module():
    spec = importlib.util.spec_from_file_location("healthcheck", images.DEPLOY / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_healthcheck_command_is_a_file_the_image_copies():
    assert DOCKERFILE.healthcheck[0] == "python"
    script = DOCKERFILE.host_path(DOCKERFILE.healthcheck[1])
    assert script == images.DEPLOY / "healthcheck.py" and script.is_file()
    ignored = (images.REPO / ".dockerignore").read_text().split()
    assert not {"deploy", "deploy/", "deploy/healthcheck.py", "*.py"} & set(ignored)
    # Docker kills a check that outlives --timeout; the script gives up first.
    timeout = float(DOCKERFILE.healthcheck_options["timeout"].removesuffix("s"))
    assert healthcheck_module().DEADLINE_SECONDS < timeout


def drop_database(url: str) -> None:
    """Takes the database away from under the server, as an outage would."""
    target = make_url(url)
    admin = create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def wait_until(check, timeout: float = 45.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_migrate_serve_and_healthcheck_run_as_the_image_runs_them(tmp_path):
    with throwaway_postgres_database() as url:
        port = gateway_stack.free_port()
        env = image_environment(url, port, tmp_path / "data")
        migrate = [*DOCKERFILE.entrypoint, *COMPOSE["services"]["migrate"]["command"]]
        serve = [*DOCKERFILE.entrypoint, *DOCKERFILE.cmd]

        # Nothing listens yet: unhealthy.
        assert healthcheck(env).returncode == 1

        # The CMD does not migrate: on an empty database it refuses to start.
        refused = run(serve, env)
        assert refused.returncode != 0
        assert "run 'simconfig migrate' first" in refused.stderr

        migrated = run(migrate, env)
        assert migrated.returncode == 0, migrated.stderr
        assert "database at revision" in migrated.stdout

        server = gateway_stack.spawn("server", resolve(serve, env), env, tmp_path)
        try:
            server.wait_until_serving(port, f"listening on 0.0.0.0:{port}")
            healthy = healthcheck(env)
            assert healthy.returncode == 0, healthy.stdout + healthy.stderr
            assert healthy.stdout.strip() == f"healthy: 127.0.0.1:{port}: SERVING"
            # The image logs JSON lines and serves Prometheus metrics.
            first = server.log.read_text().splitlines()[0]
            assert json.loads(first)["level"] == "INFO"
            metrics = httpx.get(
                f"http://127.0.0.1:{env['SIMCONFIG_METRICS_PORT']}/metrics", timeout=10
            )
            assert "simconfig_health_serving" in metrics.text

            # The database goes away: the server keeps running but is no longer healthy.
            drop_database(url)
            wait_until(lambda: healthcheck(env).returncode == 1, what="NOT_SERVING")
            assert server.popen.poll() is None
            assert "NOT_SERVING" in healthcheck(env).stdout

            # `docker stop`: SIGTERM, a clean exit, and the check fails.
            server.popen.terminate()
            assert server.popen.wait(timeout=60) == 0, server.log_tail()
            stopped = healthcheck(env)
            assert stopped.returncode == 1
            assert "UNAVAILABLE" in stopped.stdout
        finally:
            server.stop()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0.0.0.0", "127.0.0.1:50051"),
        ("::", "127.0.0.1:50051"),
        ("10.1.2.3", "10.1.2.3:50051"),
        ("fd00::5", "[fd00::5]:50051"),
    ],
)
def test_the_healthcheck_asks_the_address_the_server_listens_on(host, expected):
    target = healthcheck_module().target
    assert target({"SIMCONFIG_HOST": host, "SIMCONFIG_PORT": "50051"}) == expected
