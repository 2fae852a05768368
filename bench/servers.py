"""The processes under test: ``simconfig serve``, the bare reference server, the CLI.

Both servers run as subprocesses of their own and are told apart from the load, which runs
in other processes again (h2load, the Python driver); nothing is measured in-process.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

BIN = Path(sys.executable).parent
SIMCONFIG = str(BIN / "simconfig")
REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 60.0
# How long to wait for every requested process to listen before measuring anyway: a server
# that ignores SIMCONFIG_PROCESSES never gets there, and is then measured as what it is.
ALL_PROCESSES_TIMEOUT_SECONDS = 15.0
_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(
    data_dir: Path,
    database_url: str | None,
    *,
    port: int = 0,
    processes: int = 1,
    telemetry: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a ``simconfig`` process: this benchmark's database and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMCONFIG_")}
    env.update(
        SIMCONFIG_DATA_DIR=str(data_dir),
        SIMCONFIG_HOST="127.0.0.1",
        SIMCONFIG_PORT=str(port),
        SIMCONFIG_PROCESSES=str(processes),
        # INFO: the "listening on" line is an INFO record; so is each call's access line,
        # whose cost is part of what is measured.
        SIMCONFIG_LOG_LEVEL="INFO",
        # The demo tenant would only add a line to parse around; the benchmark makes its own.
        SIMCONFIG_DEMO_TENANT="false",
        # Metrics and tracing off unless --telemetry asks for them (see bench/run.py).
        SIMCONFIG_METRICS_PORT="0",
        # One tenant drives the whole load (16x8 calls in flight): what is measured is the
        # server's throughput, not the per-tenant limits that share it out between tenants.
        SIMCONFIG_TENANT_MAX_CALLS="100000",
        SIMCONFIG_TENANT_REQUESTS_PER_SECOND="0",
        SIMCONFIG_RPC_THREADS_RESERVED="0",
    )
    if database_url:
        env["SIMCONFIG_DATABASE_URL"] = database_url
    env.update(telemetry or {})
    return env


class OtlpSink:
    """A local OTLP trace receiver that counts and drops spans, for ``--telemetry`` runs.

    The servers export to it as they would to a collector, so the export's cost is measured
    without a collector's.
    """

    def __init__(self) -> None:
        from concurrent import futures

        import grpc
        from opentelemetry.proto.collector.trace.v1 import (
            trace_service_pb2,
            trace_service_pb2_grpc,
        )

        sink = self

        class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):  # noqa: N802 - the gRPC method's name
                sink.spans += sum(
                    len(scope.spans)
                    for spans in request.resource_spans
                    for scope in spans.scope_spans
                )
                return trace_service_pb2.ExportTraceServiceResponse()

        self.spans = 0
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Receiver(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def settings(self, sample: float = 1.0) -> dict[str, str]:
        """The servers' environment for metrics on and ``sample`` of the calls traced here."""
        return {
            "SIMCONFIG_METRICS_PORT": str(free_port()),
            "SIMCONFIG_TRACING": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.port}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(sample),
        }

    def stop(self) -> None:
        """Stops receiving."""
        self._server.stop(None)


def simconfig(env: Mapping[str, str], *args: str) -> str:
    """Runs a ``simconfig`` command to completion; returns its standard output."""
    result = subprocess.run(
        [SIMCONFIG, *args], env=dict(env), capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"simconfig {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def create_tenant_key(env: Mapping[str, str], name: str) -> tuple[str, str]:
    """Creates a tenant and a write key with the CLI, as an operator would.

    Returns (tenant id, key).
    """
    tenant_id = simconfig(env, "tenants", "create", name).strip().splitlines()[-1]
    key = simconfig(env, "keys", "create", "--tenant", tenant_id).strip().splitlines()[-1]
    return tenant_id, key


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port``: one per process serving it with SO_REUSEPORT.

    A socket that is only bound (a parent reserving the port for its children) is not
    listening and is not counted.
    """
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses; the parent id is the
        # second field after its closing parenthesis.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, ()))
    return tree


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (VmRSS), or None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


class RssSampler:
    """Samples the resident memory of a process and its descendants every half second.

    Keeps the peak of each pid seen, so a child restarted under a new pid shows as a new row.
    """

    INTERVAL_SECONDS = 0.5

    def __init__(self, pid: int):
        self._pid = pid
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.INTERVAL_SECONDS):
                return

    def sample(self) -> None:
        for pid in process_tree(self._pid):
            rss = rss_mib(pid)
            if rss is not None:
                self.peaks[pid] = max(rss, self.peaks.get(pid, 0.0))

    def stop(self) -> dict[int, float]:
        """Stops sampling; returns the peak RSS (MiB) of each pid, the server's own first."""
        self._stop.set()
        self._thread.join()
        return dict(sorted(self.peaks.items(), key=lambda item: item[0] != self._pid))


class Subprocess:
    """A server subprocess whose output goes to a log file and is watched for readiness."""

    def __init__(self, command: list[str], env: Mapping[str, str], log_path: Path, name: str):
        self.name = name
        self.log_path = log_path
        self.process = subprocess.Popen(
            command,
            env=dict(env),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group, so that stopping it reaches any children it forked.
            start_new_session=True,
        )
        self._listening = threading.Event()
        self.port: int | None = None
        self._reader = threading.Thread(target=self._read, name=f"{name}-output", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        with self.log_path.open("w") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                match = re.search(r"listening on [\w.\[\]:]*?:(\d+)", line)
                if match and not self._listening.is_set():
                    self.port = int(match.group(1))
                    self._listening.set()

    def wait_listening(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Waits for its ``listening on HOST:PORT`` line; fails with its output otherwise."""
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(quiet=True)
                raise RuntimeError(f"{self.name} did not start:\n{self.output_tail()}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ensure_running(self, during: str) -> None:
        """Fails, with the end of its output, when the server is no longer running."""
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited (code {self.process.returncode}) during {during}:\n"
                f"{self.output_tail()}"
            )

    def output_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])

    def stop(self, timeout: float = 30.0, *, quiet: bool = False) -> None:
        """SIGTERM (the server drains), then SIGKILL to the whole group if it hangs.

        A server that had already exited is reported with the end of its output (unless
        ``quiet``): figures measured against it are worthless, and the output is why.
        """
        if self.process.poll() is not None and not quiet:
            print(
                f"{self.name} exited on its own (code {self.process.returncode}):\n"
                f"{self.output_tail()}",
                file=sys.stderr,
            )
        elif self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Children that outlived their parent would keep the port and skew the next run.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._reader.join(5)


def start_service(env: Mapping[str, str], processes: int, log_path: Path) -> Subprocess:
    """Starts ``simconfig serve`` and waits until it serves with ``processes`` processes.

    Ready means: the ``listening on 127.0.0.1:PORT`` line was printed, and ``processes``
    sockets listen on the port (one per serving process), or, failing that, a grace period
    passed. Connections made before every process listens would all land on the first one.
    """
    server = Subprocess([SIMCONFIG, "serve"], env, log_path, "simconfig serve")
    server.wait_listening()
    deadline = time.monotonic() + ALL_PROCESSES_TIMEOUT_SECONDS
    while listening_sockets(server.port) < processes and time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"simconfig serve exited:\n{server.output_tail()}")
        time.sleep(0.1)
    return server


def start_reference(replies: Mapping[str, Path], log_path: Path) -> Subprocess:
    """Starts the bare reference server answering each method with the bytes of its file."""
    command = [sys.executable, "-m", "bench.reference_server"]
    for method, path in replies.items():
        command += ["--reply", f"{method}={path}"]
    server = Subprocess(command, os.environ, log_path, "reference server")
    server.wait_listening()
    return server
