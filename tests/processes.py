"""Run the real ``simconfig`` command and the real ``grpcurl`` binary from tests."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SIMCONFIG = str(BIN / "simconfig")
GRPCURL = str(BIN / "grpcurl")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(data_dir: Path, port: int = 0, database_url: str | None = None, **extra) -> dict:
    """The environment for a ``simconfig`` process on its own database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMCONFIG_")}
    env.update(
        SIMCONFIG_DATA_DIR=str(data_dir),
        SIMCONFIG_HOST="127.0.0.1",
        SIMCONFIG_PORT=str(port),
        SIMCONFIG_LOG_LEVEL="INFO",
        # Off unless a test asks: the default port would be shared by every server started.
        SIMCONFIG_METRICS_PORT="0",
    )
    if database_url:
        env["SIMCONFIG_DATABASE_URL"] = database_url
    env.update({k: str(v) for k, v in extra.items()})
    return env


def simconfig(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs a ``simconfig`` sub-command to completion."""
    result = subprocess.run([SIMCONFIG, *args], env=env, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"simconfig {' '.join(args)} failed: {result.stderr}")
    return result


def create_tenant_key(env: dict, name: str, scope: str = "write") -> tuple[str, str]:
    """Creates a tenant and a key with the CLI; returns (tenant id, key)."""
    tenant_id = simconfig(env, "tenants", "create", name).stdout.strip().splitlines()[-1]
    key = simconfig(env, "keys", "create", "--tenant", tenant_id, "--scope", scope)
    return tenant_id, key.stdout.strip().splitlines()[-1]


def add_tenant_key(env: dict, name: str, scope: str = "write") -> tuple[str, str]:
    """Like :func:`create_tenant_key`, written straight to the database ``env`` names.

    For tests about the server rather than the CLI: each ``simconfig`` run pays seconds of
    start-up. The CLI's own commands are tested through the binary (tests/e2e/test_cli.py).
    """
    import storage
    from service.app import tenants

    url = env.get("SIMCONFIG_DATABASE_URL") or storage.sqlite_url_for(
        Path(env["SIMCONFIG_DATA_DIR"])
    )
    database = storage.Database(url)
    try:
        tenant = tenants.new_tenant(database, name)
        return tenant.id, tenants.issue_key(database, tenant.id, scope).secret
    finally:
        database.dispose()


class ServerProcess:
    """``simconfig serve`` as a subprocess; collects its output for assertions."""

    def __init__(self, env: dict):
        self.env = env
        self.process = subprocess.Popen(
            [SIMCONFIG, "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.port: int | None = None
        self._listening = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            match = re.search(r"listening on [\d.]+:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                self._listening.set()

    def wait_ready(self, timeout: float = 30.0) -> ServerProcess:
        """Waits for the "listening on" line; fails with the output otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._listening.wait(0.1):
                return self
            if self.process.poll() is not None:
                break
        raise AssertionError("server did not start:\n" + self.output)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def grpcurl(address: str, method: str, body: dict | None = None, key: str | None = None):
    """Calls ``method`` with the real grpcurl binary.

    Returns (exit code, parsed JSON response or None, stderr text).
    """
    args = [GRPCURL, "-plaintext", "-format-error"]
    if key:
        args += ["-H", f"x-api-key: {key}"]
    args += ["-d", "@", address, method]
    result = subprocess.run(
        args, input=json.dumps(body or {}), capture_output=True, text=True, timeout=30
    )
    # Responses arrive on stdout; with -format-error a failed call's status
    # (code, message, details) arrives as JSON on stderr.
    parsed = None
    for text in (result.stdout.strip(), result.stderr.strip()):
        if text:
            try:
                parsed = json.loads(text)
                break
            except json.JSONDecodeError:
                continue
    return result.returncode, parsed, result.stderr + result.stdout


def status_name(exit_code: int) -> str:
    """The gRPC status name behind a grpcurl exit code (grpcurl exits 64 + code)."""
    import grpc

    if exit_code == 0:
        return "OK"
    by_value = {status.value[0]: status.name for status in grpc.StatusCode}
    return by_value.get(exit_code - 64, f"exit {exit_code}")
