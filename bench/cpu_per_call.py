"""CPU time per GetScenario call with metrics and tracing off, on, sampled and not.

Usage:
    .venv/bin/python -m bench.cpu_per_call [--calls N] [--rounds R] [--modes off,metrics,...]
        [--log-format none|json|text]

Throughput on the shared development machine swings by half from run to run, and so does a
figure taken a minute after another. So every mode gets a server of its own in ONE process
(in-process servers on embedded SQLite databases of their own, as the tracing tests run them)
and the modes take turns: each round calls every server ``--calls`` times in a row, measuring
the process's CPU time (every thread) over those calls. A busy moment on the machine then
hits every mode alike; the figure of a mode is its median round.

Modes: ``off`` (no metrics, no tracing), ``metrics``, ``unsampled`` (tracing on, the standard
``parentbased_traceidratio`` sampler at 0: no call sampled), ``sampled`` (every call traced),
``metrics+unsampled``. Each traced server gets a tracer provider of its own, made as
``simconfig serve`` makes it (:func:`service.telemetry.tracing.new_tracer_provider`), whose
exporter drops the spans behind the batching processor: what is measured is the server's own
work, not an exporter's. Logging is off unless ``--log-format`` names the format ``serve``
writes (``json`` in the container image): then every call's access line is made and formatted
as there, and written to ``/dev/null``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from simulation.v1 import scenario_pb2, scenario_service_pb2_grpc
from simulation.v1 import scenario_service_pb2 as pb

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from service.telemetry.logs import configure_logging
from service.telemetry.tracing import new_tracer_provider

MODES = ("off", "metrics", "unsampled", "sampled", "metrics+unsampled")
# OTEL_TRACES_SAMPLER_ARG of the traced modes (parentbased_traceidratio).
SAMPLED_FRACTION = {"unsampled": "0", "sampled": "1", "metrics+unsampled": "0"}


class _Dropping(SpanExporter):
    """Takes every span and keeps none; counts them, so the run shows its modes were real."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans):
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


@contextmanager
def _tracer_provider_for(mode: str, exporter: _Dropping) -> Iterator[TracerProvider | None]:
    """While a server of ``mode`` is built, the global tracer provider is its own one.

    A process sets its global provider once; the servers of this one process each need
    theirs, and ``create_server`` reads the global one.
    """
    if mode not in SAMPLED_FRACTION:
        yield None
        return
    sampler_env = {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": SAMPLED_FRACTION[mode],
    }
    with mock.patch.dict(os.environ, sampler_env):
        provider = new_tracer_provider(exporter)
    with mock.patch.object(trace, "get_tracer_provider", return_value=provider):
        yield provider


class ModeServer:
    """An in-process server of one mode, a scenario in it and a stub calling it."""

    def __init__(self, mode: str):
        self.mode = mode
        data_dir = Path(tempfile.mkdtemp(prefix=f"simconfig-cpu-{mode}-"))
        database = storage.Database(storage.sqlite_url_for(data_dir))
        database.migrate()
        tenant = tenants.new_tenant(database, "bench")
        self.metadata = (("x-api-key", tenants.issue_key(database, tenant.id).secret),)
        settings = Settings(
            port=0,
            data_dir=data_dir,
            tracing="console" if mode in SAMPLED_FRACTION else "off",
            # Only the figures are kept: create_server serves no /metrics itself.
            metrics_port=9464 if "metrics" in mode else 0,
        )
        self.exporter = _Dropping()
        with _tracer_provider_for(mode, self.exporter) as provider:
            self.provider = provider
            self.server, port = create_server(settings, database=database)
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = scenario_service_pb2_grpc.ScenarioServiceStub(self.channel)
        scenario = self.stub.CreateScenario(
            pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name="CPU")),
            metadata=self.metadata,
        ).scenario
        self.request = pb.GetScenarioRequest(scenario_id=scenario.id)

    def cpu_per_call(self, calls: int) -> float:
        """Calls GetScenario ``calls`` times; the process's CPU µs per call."""
        started = time.process_time()
        for _ in range(calls):
            self.stub.GetScenario(self.request, metadata=self.metadata)
        return (time.process_time() - started) / calls * 1e6

    def close(self) -> None:
        """Closes the channel and stops the server."""
        self.channel.close()
        self.server.stop(0)
        if self.provider is not None:
            self.provider.shutdown()  # exports the spans still batched


def _log_to_null(log_format: str) -> None:
    """Logs at INFO in ``log_format`` as ``serve`` does, to /dev/null (the access lines)."""
    configure_logging("INFO", log_format)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # open until the process ends


def main(argv: list[str] | None = None) -> None:
    """Measures every mode, in turns, and prints the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per mode and round")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--log-format", choices=("none", "json", "text"), default="none")
    args = parser.parse_args(argv)
    if args.log_format != "none":
        _log_to_null(args.log_format)
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; known: {', '.join(MODES)}")
    servers = [ModeServer(mode) for mode in modes]
    try:
        for server in servers:  # warm-up: connections, caches, first-call imports
            server.cpu_per_call(args.calls)
        rounds: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(args.rounds):
            for server in servers:
                rounds[server.mode].append(server.cpu_per_call(args.calls))
    finally:
        for server in servers:
            server.close()
    for server in servers:
        # Only the sampled mode makes spans: else its figures would not be what they say.
        if (server.exporter.spans > 0) != (server.mode == "sampled"):
            raise SystemExit(f"mode {server.mode} exported {server.exporter.spans} spans")
    base = statistics.median(rounds["off"]) if "off" in rounds else None
    print(f"{args.rounds} rounds of {args.calls} GetScenario calls per mode")
    print(f"{'mode':<20} {'CPU µs/call':>12} {'vs off':>8} {'least':>8}")
    for mode, values in rounds.items():
        median = statistics.median(values)
        versus = f"{(median / base - 1) * 100:+.1f}%" if base else ""
        print(f"{mode:<20} {median:>12,.0f} {versus:>8} {min(values):>8,.0f}")


if __name__ == "__main__":
    main()
