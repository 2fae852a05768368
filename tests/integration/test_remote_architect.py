"""The remote architect against the example backend running as a real, separate server process."""

from __future__ import annotations

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
from service.validation import ConfigValidator

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
        seen: list[str] = []
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.output.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            seen.append(line)
            if match := LISTENING.search(line):
                return int(match.group(1))
        self.stop()
        raise RuntimeError("example backend did not start:\n" + "".join(seen))

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
    backend = start_backend("--delay", "3")
    engine = make_engine(backend.address, timeout_seconds=0.5, max_attempts=2, initial_backoff=0.05)

    started = time.monotonic()
    with pytest.raises(ArchitectError) as info:
        engine.generate(PROMPT, PARAMS)
    elapsed = time.monotonic() - started

    assert info.value.reason == "DEADLINE_EXCEEDED"
    assert info.value.retryable
    # Two half-second attempts plus a short backoff; far below the backend's 3 s delay.
    assert 0.9 <= elapsed < 2.5


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
    assert time.monotonic() - started < 5


def test_a_backend_that_comes_back_is_reached_by_a_retry(make_engine):
    port = _unused_port()
    engine = make_engine(
        f"127.0.0.1:{port}", timeout_seconds=2, max_attempts=6, initial_backoff=0.3
    )
    # The backend starts while the engine is between attempts, as after a backend restart.
    servers: list = []
    timer = threading.Timer(0.4, lambda: servers.append(serve_example_backend(port)[0]))
    timer.start()
    try:
        generated = engine.generate(PROMPT, PARAMS)
    finally:
        timer.join()
        for server in servers:
            server.stop(None)

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


def test_a_backend_refusal_is_not_retried_and_reports_rejected(make_engine):
    server, port = serve_example_backend()
    try:
        engine = make_engine(f"127.0.0.1:{port}", timeout_seconds=5, max_attempts=3)
        started = time.monotonic()
        with pytest.raises(ArchitectError) as info:
            engine.generate(PROMPT, config_pb2.ArchitectParameters(num_agents=501))
    finally:
        server.stop(None)

    assert info.value.reason == "BACKEND_REJECTED"
    assert not info.value.retryable
    assert "INVALID_ARGUMENT" in str(info.value)
    assert time.monotonic() - started < 1


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
    time.sleep(0.5)  # let the call reach the backend's delay
    backend.process.terminate()

    assert backend.process.wait(timeout=5) == 0
    caller.join(timeout=5)
    assert [e.reason for e in errors] == ["BACKEND_UNAVAILABLE"]
