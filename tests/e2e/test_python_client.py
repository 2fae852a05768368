"""The Python client as another service gets it: installed on its own, against ``simconfig serve``.

The package is pip-installed into a fresh virtual environment (with the repository's pins), the
README's "Calling it from Python" snippet runs there against a real server, and a server
stopped and restarted between calls is ridden out by the client's retry policy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from simconfig_client import Client, RetryPolicy, errors

from tests.processes import ServerProcess, environment, free_port

ROOT = Path(__file__).resolve().parents[2]


def readme_snippet() -> str:
    """The ```python block of the README's "Calling it from Python" section."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Calling it from Python\n(.*?)^## ", text, re.DOTALL | re.MULTILINE)
    assert section, "README has no 'Calling it from Python' section"
    (block,) = re.findall(r"```python\n(.*?)```", section.group(1), flags=re.DOTALL)
    return block


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    """A fresh virtual environment with only ``pip install ./clients/python`` in it."""
    venv = tmp_path_factory.mktemp("client-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "constraints.txt"),
            str(ROOT / "clients" / "python"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    process = ServerProcess(environment(tmp_path_factory.mktemp("client-e2e"), free_port()))
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def demo_key(server: ServerProcess) -> str:
    return re.search(r"export SIMCONFIG_API_KEY=(\S+)", server.output).group(1)


def run_python(python: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    """Runs ``code`` with ``python`` away from the repository (nothing of it on the path)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SIMCONFIG_", "PYTHON"))}
    return subprocess.run(
        [str(python), "-c", code],
        env={**clean, **env},
        cwd=python.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_client_installs_without_the_server_or_its_dependencies(client_venv):
    for module in ("simconfig_client", "grpc", "google.rpc.error_details_pb2"):
        result = run_python(client_venv, f"import {module}")
        assert result.returncode == 0, result.stderr
    for module in ("service", "storage", "simulation", "sqlalchemy", "psycopg", "alembic"):
        result = run_python(client_venv, f"import {module}")
        assert result.returncode != 0, f"{module} is importable next to the client"


def test_the_readme_snippet_runs_in_the_fresh_environment(client_venv, demo_server):
    script = readme_snippet().replace("127.0.0.1:50051", demo_server.address)

    result = run_python(client_venv, script, SIMCONFIG_API_KEY=demo_key(demo_server))

    assert result.returncode == 0, result.stderr
    assert "created Pricing war (Python)" in result.stdout
    assert "listed Pricing war (Python) - Q3 price moves" in result.stdout
    assert "refused" in result.stdout and "'scenario.display_name'" in result.stdout


def test_calls_ride_out_a_server_stopped_and_restarted_between_them(tmp_path):
    env = environment(tmp_path, free_port())
    first = ServerProcess(env).wait_ready()
    key = demo_key(first)
    # The default policy's backoffs (0.5, 1, 2, 4 s, jittered) cover a restart on an idle
    # machine; this one (2, 4, 8, 10 s: about 24 s) keeps covering it on a loaded one.
    patient = RetryPolicy(initial_backoff=2.0, max_backoff=10.0)
    with Client(first.address, key, timeout=60, retry=patient) as client:
        created = client.create_scenario(scenario={"display_name": "Survives"}).scenario
        first.stop()

        # The server is down: a write that may not be repeated fails at once.
        with pytest.raises(errors.Unavailable):
            client.update_scenario(scenario={"id": created.id, "description": "lost"})

        # Restart it on the same port and database, then call without waiting for it: the
        # first attempts find nothing listening and the retry policy carries the call over.
        second = ServerProcess(env)
        try:
            read = client.get_scenario(scenario_id=created.id).scenario
            assert read.display_name == "Survives"
            assert second.process.poll() is None
            second.stop()

            third = ServerProcess(env)
            try:
                again = client.create_scenario(scenario={"display_name": "After"}).scenario
                assert client.get_scenario(scenario_id=again.id).scenario.display_name == "After"
            finally:
                third.stop()
        finally:
            second.stop()
