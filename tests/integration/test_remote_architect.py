"""The remote architect against the example backend running as a real, separate server process."""

from __future__ import annotations

import logging
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from simulation.v1 import config_pb2

from service.architect import ArchitectError, BuiltinArchitectEngine, RemoteArchitectEngine
from service.architect.example_backend import serve_example_backend
from service.domain.validation import ConfigValidator

PROMPT = "Regulators, a startup founder and a journalist argue over an AI safety incident"
PARAMS = config_pb2.ArchitectParameters(max_turns=12, num_agents=5, seed=11, temperature=0.3)
REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"example architect backend listening on 127\.0\.0\.1:(\d+)")
STARTUP_TIMEOUT = 15.0


def _pump(stream, lines: queue.Queue[str]) -> None:
    # Keeps reading for the process's whole life so a chatty backend never blocks on a full pipe.
    for line in stream:
        lines.put(line)


class Backend:
    """A running example backend process and the address it listens on."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.architect.example_backend", "--port", "0", *args],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_pump, args=(self.process.stdout, self.output), daemon=True).start()
        self.address = f"127.0.0.1:{self._wait_for_port()}"

    def _wait_for_port(self) -> int:
        try:
            return int(self.wait_for_line(LISTENING, STARTUP_TIMEOUT).group(1))
        except AssertionError as error:
            self.stop()
            raise RuntimeError(f"example backend did not start: {error}") from None

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """Reads the backend's output until a line matches ``pattern``; returns the match."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.output.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            seen.append(line)
            if match := pattern.search(line):
                return match
        raise AssertionError(f"no line matching {pattern.pattern!r} in:\n" + "".join(seen))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the backend does not exit promptly."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@pytest.fixture
def start_backend() -> Iterator[Callable[..., Backend]]:
    """Start example backends as subprocesses; every one is terminated when the test ends."""
    started: list[Backend] = []

    def start(*args: str) -> Backend:
        backend = Backend(*args)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def make_engine() -> Iterator[Callable[..., RemoteArchitectEngine]]:
    """Build remote engines whose channels are closed when the test ends."""
    engines: list[RemoteArchitectEngine] = []

    def make(address: str, **options) -> RemoteArchitectEngine:
        engine = RemoteArchitectEngine(address, **options)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_remote_output_equals_the_builtin_engines_for_the_same_input(start_backend, make_engine):
    backend = start_backend()
    engine = make_engine(backend.address, timeout_seconds=10)

    remote = engine.generate(PROMPT, PARAMS, simulation_id="sim-1", request_id="job-1")
    local = BuiltinArchitectEngine().generate(PROMPT, PARAMS)

    assert remote.config == local.config
    assert remote.sources == local.sources
    assert ConfigValidator().validate(remote.config) == []


def test_a_slow_backend_fails_with_deadline_exceeded_in_bounded_time(start_backend, make_engine):
    backend = start_backend("--delay", "60")
    engine = make_engine(backend.address, timeout_seconds=0.5, max_attempts=2, initial_backoff=0.05)

    started = time.monotonic()
    with pytest.raises(ArchitectError) as info:
        engine.generate(PROMPT, PARAMS)
    elapsed = time.monotonic() - started

    assert info.value.reason == "DEADLINE_EXCEEDED"
    assert info.value.retryable
    assert "2 attempt" in str(info.value)
    # Both half-second deadlines ran out (they never end early), and the engine gave up long
    # before the backend's 60 s delay would have answered: one-sided bounds, far apart.
    assert 1.0 <= elapsed < 30


def test_an_unreachable_backend_fails_with_backend_unavailable_after_bounded_retries(make_engine):
    engine = make_engine(
        f"127.0.0.1:{_unused_port()}", timeout_seconds=2, max_attempts=3, initial_backoff=0.05
    )

    started = time.monotonic()
    with pytest.raises(ArchitectError) as info:
        engine.generate(PROMPT, PARAMS)

    assert info.value.reason == "BACKEND_UNAVAILABLE"
    assert info.value.retryable
    assert "3 attempt" in str(info.value)
    # Bounded: three 2 s attempts and short backoffs at most, not gRPC's own reconnect wait.
    assert time.monotonic() - started < 30


class _StartBackendOnFirstRetry(logging.Handler):
    """Starts the backend when the engine logs its first failed attempt, before it retries."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.servers: list = []

    def emit(self, record: logging.LogRecord) -> None:
        if not self.servers and "retrying" in record.getMessage():
            self.servers.append(serve_example_backend(self.port)[0])


def test_a_backend_that_comes_back_is_reached_by_a_retry(make_engine):
    port = _unused_port()
    engine = make_engine(
        f"127.0.0.1:{port}", timeout_seconds=2, max_attempts=6, initial_backoff=0.3
    )
    # The backend starts while the engine is between attempts, as after a backend restart.
    starter = _StartBackendOnFirstRetry(port)
    remote_logger = logging.getLogger("service.architect.remote")
    remote_logger.addHandler(starter)
    try:
        generated = engine.generate(PROMPT, PARAMS)
    finally:
        remote_logger.removeHandler(starter)
        for server in starter.servers:
            server.stop(None)

    assert len(starter.servers) == 1, "the first attempt should have found no backend"
    assert generated.config == BuiltinArchitectEngine().generate(PROMPT, PARAMS).config


def test_invalid_backend_output_is_returned_as_is_and_the_validator_rejects_it(
    start_backend, make_engine
):
    backend = start_backend("--invalid")
    engine = make_engine(backend.address, timeout_seconds=10)

    config = engine.generate(PROMPT, PARAMS).config

    last_agent = len(config.agents) - 1
    last_event = len(config.events) - 1
    assert config.agents[last_agent].id == config.agents[0].id
    assert config.events[last_event].turn == PARAMS.max_turns + 1
    fields = {v.field for v in ConfigValidator().validate(config)}
    assert fields == {f"agents[{last_agent}].id", f"events[{last_event}].turn"}


def test_a_backend_refusal_is_not_retried_and_reports_rejected(make_engine, caplog):
    server, port = serve_example_backend()
    try:
        engine = make_engine(f"127.0.0.1:{port}", timeout_seconds=5, max_attempts=3)
        with caplog.at_level(logging.WARNING, logger="service.architect.remote"):
            with pytest.raises(ArchitectError) as info:
                engine.generate(PROMPT, config_pb2.ArchitectParameters(num_agents=501))
    finally:
        server.stop(None)

    assert info.value.reason == "BACKEND_REJECTED"
    assert not info.value.retryable
    assert "INVALID_ARGUMENT" in str(info.value)
    assert [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()] == []


def test_sigterm_ends_the_backend_promptly_and_in_flight_calls_see_it_as_unavailable(
    start_backend, make_engine
):
    backend = start_backend("--delay", "30")
    engine = make_engine(backend.address, timeout_seconds=20, max_attempts=1)
    errors: list[ArchitectError] = []

    def call() -> None:
        try:
            engine.generate(PROMPT, PARAMS)
        except ArchitectError as error:
            errors.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    backend.wait_for_line(re.compile("GenerateConfig"), timeout=15)  # the call is in the delay
    backend.process.terminate()

    assert backend.process.wait(timeout=5) == 0
    caller.join(timeout=5)
    assert [e.reason for e in errors] == ["BACKEND_UNAVAILABLE"]
