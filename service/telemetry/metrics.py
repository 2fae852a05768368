"""Prometheus metrics: the standard gRPC server metrics and the service's own.

Each server keeps its metrics in a registry of its own (several servers may run in one test
process). With several server processes (:mod:`service.processes`) the values live in files
under ``PROMETHEUS_MULTIPROC_DIR``, which the parent creates before it forks, and the parent
alone serves ``/metrics``, adding up its children's figures (prometheus-client's multiprocess
mode). Labels only ever hold bounded values: method names, status codes, fixed reasons and
states; never a tenant, key or resource id.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
    values,
)

from service.architect.worker import JOB_OUTCOMES

log = logging.getLogger(__name__)

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Latency buckets (seconds) for calls that take from a millisecond to a long architect wait.
# How often a server process writes the increments it buffered to its metric files (see
# _BufferedValue): /metrics, served by the parent, lags the calls by about this much.
FLUSH_SECONDS = 0.2
HANDLING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
JOB_STATES = ("queued", "running", "succeeded", "failed")


def _split(method: str) -> tuple[str, str]:
    """``/package.Service/Method`` -> (``package.Service``, ``Method``)."""
    _, service, name = method.split("/", 2)
    return service, name


class ServerMetrics:
    """The metrics of one server process; an observer of every call (see ``AccessInterceptor``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("grpc_type", "grpc_service", "grpc_method")
        self._started = Counter(
            "grpc_server_started_total",
            "RPCs started on the server.",
            labels,
            registry=self.registry,
        )
        self._handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, whatever their status.",
            (*labels, "grpc_code"),
            registry=self.registry,
        )
        self._handling = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its status, in seconds.",
            labels,
            buckets=HANDLING_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "simconfig_db_transaction_retries_total",
            "Database transactions run again, by reason (connection_lost, transient, conflict).",
            ("reason",),
            registry=self.registry,
        )
        self.pool = Gauge(
            "simconfig_db_pool_connections",
            "Database connections: in_use now, and the pools' size, summed over processes.",
            ("state",),
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.jobs = Gauge(
            "simconfig_architect_jobs",
            "Architect jobs in the database by state (the same for every process).",
            ("state",),
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.jobs_finished = Counter(
            "simconfig_architect_jobs_finished_total",
            "Architect jobs finished by this server's workers, by outcome (succeeded, failed, "
            "invalid_output, abandoned, superseded).",
            ("outcome",),
            registry=self.registry,
        )
        for outcome in JOB_OUTCOMES:  # every outcome from the start: rate() needs a zero
            self.jobs_finished.labels(outcome)
        self.queue_age = Gauge(
            "simconfig_architect_queue_age_seconds",
            "Age of the oldest architect job still waiting for a worker (0 when none waits).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.key_cache = Counter(
            "simconfig_api_key_cache_lookups_total",
            "API key look-ups answered from memory (hit) or by the database (miss).",
            ("result",),
            registry=self.registry,
        )
        self.serving = Gauge(
            "simconfig_health_serving",
            "1 while the health service answers SERVING (the database answers), else 0.",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        # Each method's labelled series, looked up once: labels() costs a lock and a few
        # tuples, on every call otherwise.
        self._methods: dict[str, _MethodMetrics] = {}
        self._key_hits = self.key_cache.labels("hit")
        self._key_misses = self.key_cache.labels("miss")

    # -- CallObserver --
    def started(self, method: str) -> None:
        """Counts a started call."""
        self._children(method).started.inc()

    def handled(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        """Counts a finished call by its code and records how long it took."""
        children = self._children(method)
        children.handled(code).inc()
        children.handling.observe(seconds)

    def _children(self, method: str) -> _MethodMetrics:
        # Only methods the server serves reach an observer (an unknown one is refused before
        # any interceptor sees it), so there is one entry per served method at most.
        children = self._methods.get(method)
        if children is None:
            children = self._methods[method] = _MethodMetrics(self, method)
        return children

    # -- service figures --
    def retried(self, reason: str) -> None:
        """Counts one retry of a database transaction."""
        self.retries.labels(reason).inc()

    def job_finished(self, outcome: str) -> None:
        """Counts an architect job that ended with ``outcome`` (a fixed word, never an id)."""
        self.jobs_finished.labels(outcome).inc()

    def key_lookup(self, hit: bool) -> None:
        """Counts an API key look-up as a cache hit or miss."""
        (self._key_hits if hit else self._key_misses).inc()

    def set_pool(self, in_use: int, size: int) -> None:
        """Records the database pool's figures."""
        self.pool.labels("in_use").set(in_use)
        self.pool.labels("size").set(size)

    def set_jobs(self, counts: dict[str, int], oldest_queued_seconds: float) -> None:
        """Records how many architect jobs are in each state and the queue's age."""
        for state in JOB_STATES:
            self.jobs.labels(state).set(counts.get(state, 0))
        self.queue_age.set(oldest_queued_seconds)

    def set_serving(self, serving: bool) -> None:
        """Records the health status."""
        self.serving.set(1 if serving else 0)


class _MethodMetrics:
    """The series of one method: started, handling time, and handled by code (as they come)."""

    __slots__ = ("_by_code", "_handled", "_labels", "handling", "started")

    def __init__(self, metrics: ServerMetrics, method: str):
        service, name = _split(method)
        self._labels = ("unary", service, name)
        self.started = metrics._started.labels(*self._labels)
        self.handling = metrics._handling.labels(*self._labels)
        self._handled = metrics._handled
        self._by_code: dict[grpc.StatusCode, Counter] = {}

    def handled(self, code: grpc.StatusCode) -> Counter:
        """The handled counter of this method and ``code``."""
        child = self._by_code.get(code)
        if child is None:
            child = self._by_code[code] = self._handled.labels(*self._labels, code.name)
        return child


def serve_metrics(host: str, port: int, registry: CollectorRegistry):
    """Serves ``registry`` on ``http://host:port/metrics``; returns the HTTP server.

    A taken port raises OSError naming the address, as the gRPC port does.
    """
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise OSError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    return server


class _Flusher:
    """The buffered values of this process, and the thread that writes them every FLUSH_SECONDS.

    A forked child inherits neither the thread nor, usefully, the parent's values: the first
    value made in a process starts that process's own.
    """

    def __init__(self) -> None:
        self._pid: int | None = None
        self._values: list[_BufferedValue] = []
        self._lock = threading.Lock()

    def add(self, value: _BufferedValue) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._values = []
                threading.Thread(target=self._run, name="metrics-flusher", daemon=True).start()
            self._values.append(value)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        """Writes every value's buffered increments to its file now."""
        with self._lock:
            buffered = list(self._values) if self._pid == os.getpid() else []
        for value in buffered:
            value.flush()


_flusher = _Flusher()


def flush_pending() -> None:
    """Writes the increments this process buffered (call it before the process exits)."""
    _flusher.flush()


def _buffered_value_class(stored_class):
    """prometheus-client's multiprocess value class, with its increments buffered in memory."""

    class BufferedValue(_BufferedValue):
        _stored_class = stored_class

    return BufferedValue


class _BufferedValue:
    """A metric value of a server process in multiprocess mode, written to its file in batches.

    prometheus-client's multiprocess value writes each increment to the process's mmap file
    under one lock shared by every value of the process, after asking the kernel for the pid.
    A call makes five increments (started, handled, the histogram's bucket and sum, the
    key-cache hit), and the server hands the GIL between threads every half millisecond
    (cli.SWITCH_INTERVAL_SECONDS), so threads queue on that lock. Timed alone with 16 threads
    at that interval (2026-11-30), the metrics of one call took 8.6–9.8 µs of CPU that way,
    2.3–2.6 µs buffered as here, 3.5–4.1 µs as one process's in-memory values. Here an increment
    is appended to a deque (atomic, no lock) and a thread adds them up into the file value every
    FLUSH_SECONDS; a read or a set writes them first, and a server process writes them before
    it exits (one that crashes loses its last FLUSH_SECONDS of increments).
    """

    _stored_class: type
    _multiprocess = True

    def __init__(self, *args, **kwargs) -> None:
        self._stored = self._stored_class(*args, **kwargs)
        self._pending: deque[float] = deque()
        _flusher.add(self)

    def inc(self, amount: float) -> None:
        """Adds ``amount``, to be written with the next flush."""
        self._pending.append(amount)

    def flush(self) -> None:
        """Writes the increments buffered so far to the file value."""
        total, taken = 0.0, False
        pending = self._pending
        while pending:  # popleft is atomic: an increment appended meanwhile waits its turn
            try:
                total += pending.popleft()
            except IndexError:
                break
            taken = True
        if taken:
            self._stored.inc(total)

    def set(self, value: float, timestamp: float | None = None) -> None:
        """Sets the value (gauges), after any increments buffered before."""
        self.flush()
        self._stored.set(value, timestamp)

    def set_exemplar(self, exemplar) -> None:
        """Exemplars are not kept in multiprocess mode."""

    def get(self) -> float:
        """The value, buffered increments included."""
        self.flush()
        return self._stored.get()

    def get_exemplar(self):
        """No exemplar in multiprocess mode."""
        return None


class SharedMetricsDirectory:
    """The directory where the processes of one ``serve`` keep their metric values.

    Created by the parent before it forks; every child's values land in it, the parent serves
    their sum, and the directory is removed when the server stops.
    """

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="simconfig-metrics-"))
        os.environ[MULTIPROC_DIR_VARIABLE] = str(self.path)
        # prometheus-client chooses how values are stored when it is first imported; this
        # process imported it before the directory existed, so have it choose again.
        # Each child buffers its increments (see _BufferedValue).
        values.ValueClass = _buffered_value_class(values.get_value_class())

    def registry(self) -> CollectorRegistry:
        """A registry that reads and adds up every process's values."""
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.path))
        return registry

    def process_exited(self, pid: int) -> None:
        """Drops a dead process's live gauges (pool in use, health) from the sums."""
        multiprocess.mark_process_dead(pid, path=str(self.path))

    def remove(self) -> None:
        """Deletes the directory."""
        shutil.rmtree(self.path, ignore_errors=True)
        os.environ.pop(MULTIPROC_DIR_VARIABLE, None)
