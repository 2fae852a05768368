"""What metrics and tracing cost GetScenario, measured by interleaving in one ``make bench`` run.

Separate runs on a shared machine swing by a fifth or more, which hides a cost of a few
percent. So two ``simconfig serve`` servers run side by side, on the same database and data,
with the same number of processes: one with telemetry off, one with Prometheus metrics on and
tracing on (spans exported over OTLP to the benchmark's local sink, the standard
``parentbased_traceidratio`` sampler at the sample asked for). After an unmeasured warm-up of
each, GetScenario rounds alternate between them in ABBA order (off, on, on, off, off, on, ...),
so a slow drift of the machine's load weighs on both alike.

Each round records the calls answered with grpc-status 0 (h2load's reply-frame count) and the
CPU time (user + system, from ``/proc``) of the server's whole process tree over the round. The
figures are the median round of each server: req/s, and CPU µs per answered call, which a
neighbour's load moves less than throughput (it slows a round, not the work a call needs).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import h2load, servers
from bench.report import CostRound, TelemetryCost
from bench.seed import Rpc

PROCESSES = 2
# The README's recommendation for production: one new trace in a hundred.
DEFAULT_SAMPLE = 0.01
DEFAULT_PAIRS = 6
DEFAULT_SECONDS = 3.0
WARM_UP_SECONDS = 2.0
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants, so far."""
    total = 0
    for member in servers.process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue  # exited since the tree was listed
        # Fields after the command name's closing parenthesis start at field 3 (state);
        # utime and stime are fields 14 and 15.
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS_PER_SECOND


def abba(pairs: int) -> list[bool]:
    """The order of the rounds, True for telemetry on: off on, on off, off on, ..."""
    order = []
    for pair in range(pairs):
        order += [False, True] if pair % 2 == 0 else [True, False]
    return order


@dataclass(frozen=True)
class Settings:
    """How the interleaved rounds are run."""

    sample: float = DEFAULT_SAMPLE
    pairs: int = DEFAULT_PAIRS
    seconds: float = DEFAULT_SECONDS
    warm_up: float = WARM_UP_SECONDS
    connections: int = 16
    streams: int = 8


def measure(
    db,
    key: str,
    rpc: Rpc,
    sink: servers.OtlpSink,
    settings: Settings,
    workdir: Path,
    *,
    log: Callable[[str], None],
) -> TelemetryCost:
    """Starts the two servers, runs the rounds, stops the servers; what they measured."""
    started: list[servers.Subprocess] = []
    notes = []
    try:
        for on in (False, True):
            port = servers.free_port()
            env = servers.environment(
                db.data_dir,
                db.server_url,
                port=port,
                processes=PROCESSES,
                telemetry=sink.settings(settings.sample) if on else None,
            )
            name = "on" if on else "off"
            log(f"starting simconfig serve with telemetry {name}, {PROCESSES} processes")
            started.append(
                servers.start_service(env, PROCESSES, workdir / f"serve-telemetry-{name}.log")
            )
            serving = servers.listening_sockets(port)
            if serving != PROCESSES:
                notes.append(
                    f"telemetry cost, telemetry {name}: {serving} process(es) served the port, "
                    f"not {PROCESSES}"
                )
        off_server, on_server = started
        for server in started:
            _round(server, key, rpc, settings, settings.warm_up, workdir)  # unmeasured
        rounds: dict[bool, list[CostRound]] = {False: [], True: []}
        order = abba(settings.pairs)
        for index, on in enumerate(order, 1):
            server = on_server if on else off_server
            measured = _round(server, key, rpc, settings, settings.seconds, workdir)
            rounds[on].append(measured)
            log(
                f"[telemetry cost, round {index}/{len(order)}] telemetry {'on' if on else 'off'}: "
                f"{measured.measured.rate:,.0f} req/s, {measured.cpu_us_per_call:,.0f} CPU µs "
                f"per call ({measured.measured.errors} errors)"
            )
    finally:
        for server in started:
            server.stop()
    return TelemetryCost(
        processes=PROCESSES,
        sample=settings.sample,
        seconds=settings.seconds,
        off=rounds[False],
        on=rounds[True],
        notes=tuple(notes),
    )


def _round(
    server: servers.Subprocess,
    key: str,
    rpc: Rpc,
    settings: Settings,
    seconds: float,
    workdir: Path,
) -> CostRound:
    """One h2load run of ``rpc`` against ``server``, with the CPU its processes spent."""
    before = cpu_seconds(server.pid)
    try:
        measured = h2load.run(
            f"http://{server.address}{rpc.path}",
            rpc.request,
            reply_size=len(rpc.reply),
            headers={"x-api-key": key},
            connections=settings.connections,
            streams=settings.streams,
            seconds=seconds,
            workdir=workdir,
        )
    finally:
        server.ensure_running("the telemetry cost rounds")
    return CostRound(measured, cpu_seconds(server.pid) - before)
