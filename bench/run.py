"""``make bench``: the real server, measured from outside, against a bare grpcio server.

Usage:
    .venv/bin/python -m bench.run [--database-url URL] [--seconds S] [--rounds R] [--quick]
                                  [--processes 1,2] [--scale full|small|off] [--no-docs]
                                  [--telemetry-cost on|off] [--telemetry-sample 0.01]

PostgreSQL when ``--database-url`` or ``SIMCONFIG_DATABASE_URL`` names one (the benchmark
creates its own database on that server and drops it at the end), the embedded SQLite
default otherwise.

What runs where. Nothing is measured in-process:

- ``simconfig serve`` from the virtualenv, as its own process, with ``SIMCONFIG_PROCESSES``
  set to each process count measured (1 and 2 on PostgreSQL; a server that does not know
  the setting runs one process, and is then measured as what it is). Ready means it printed
  ``listening on 127.0.0.1:PORT`` and that many sockets listen on the port.
- The bare reference server (``bench/reference_server.py``): a sync grpcio server, one
  process, 16 threads, one generic handler answering each RPC with the very bytes the real
  server answered it with. It is the ceiling a Python gRPC server reaches on this machine.
- The load: ``h2load`` for the reads, whose request never changes (GetScenario,
  ListScenarios, GetConfig), and ``bench/driver.py``, a grpc.aio process, for the writes
  that need a new request every call (CreateScenario, UpdateConfig with etags). Both keep
  the same number of calls in flight over the same number of HTTP/2 connections (16 × 8 by
  default), and every row's bare figure is measured with the same tool and settings.
- Tenants and keys are made with the ``simconfig`` CLI; the data the load uses through the
  API; the scale data by bulk inserts into the server's tables (``bench/bulk.py``).

Why the error counts can be trusted: h2load counts any HTTP 200 as a success, and a gRPC
error is an HTTP 200 too. Errors here are trailers-only (no body), so a call counts as ok
only if its reply frame arrived: ``ok = min(succeeded, body bytes // (5 + reply size))``,
with the reply size constant for these reads. Before and after every h2load run a Python
client sends the same request and checks grpc-status 0 and the reply size; a mismatch stops
the benchmark. The driver reads every call's status itself.

Rounds: each round runs every RPC against the service, then against the bare server,
each after a short unmeasured warm-up, so the two figures of a row are taken minutes apart
at most on a machine others share. The table shows the median round by req/s; errors are
summed over all rounds.

Scale (``bench/scale.py``): ListScenarios (first page, a deep page through a real page
token) and GetScenario p50 at 1,000 and 1,000,000 scenarios in a tenant (``--scale small``
skips the million), and GetScenario on a scenario with 100,000 simulations beside an empty
one. Memory: the peak VmRSS of every server process, sampled every 0.5 s.

Telemetry cost (``bench/telemetry_cost.py``; on by default for PostgreSQL without
``--quick``, ``--telemetry-cost off`` skips it): GetScenario against two more servers of 2
processes each on the same data, one with telemetry off and one with metrics and tracing on
(``--telemetry-sample`` of new traces sampled, 1% by default), in alternating rounds, so that
the machine's drift weighs on both alike; req/s and server CPU µs per call of each.

The results are printed as one table with the targets below it, and written to
``docs/performance.md`` with a plot, ``docs/performance.png`` (``--no-docs`` skips them;
``--quick``, a smoke run, does not write them unless ``--docs`` asks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc

from bench import bulk, database, h2load, report, scale, seed, servers, telemetry_cost
from bench.measurement import Measurement

DOCS = servers.REPO / "docs"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Load:
    """How hard each run pushes, and for how long."""

    def __init__(self, args: argparse.Namespace):
        self.connections = args.connections
        self.streams = args.streams
        self.seconds = args.seconds
        self.warm_up = args.warm_up

    @property
    def in_flight(self) -> int:
        return self.connections * self.streams

    @property
    def label(self) -> str:
        return f"{self.connections}×{self.streams}"


def verify(address: str, key: str, rpc: seed.Rpc) -> None:
    """One call from a Python client: grpc-status 0 and a reply of the expected size."""
    client = seed.RawClient(address, key)
    try:
        reply = client.call(rpc.path, rpc.request)
    except grpc.RpcError as exc:
        raise RuntimeError(
            f"{rpc.name} on {address} failed: {exc.code().name} {exc.details()}"
        ) from None
    finally:
        client.close()
    if len(reply) != len(rpc.reply):
        raise RuntimeError(
            f"{rpc.name} on {address} replied {len(reply)} bytes, not {len(rpc.reply)}: "
            "h2load's error count relies on a constant reply size"
        )


def measure_h2load(address: str, key: str, rpc: seed.Rpc, load: Load, workdir: Path) -> Measurement:
    def run(seconds: float) -> Measurement:
        return h2load.run(
            f"http://{address}{rpc.path}",
            rpc.request,
            reply_size=len(rpc.reply),
            headers={"x-api-key": key},
            connections=load.connections,
            streams=load.streams,
            seconds=seconds,
            workdir=workdir,
        )

    verify(address, key, rpc)
    if load.warm_up > 0:
        run(load.warm_up)
    measured = run(load.seconds)
    verify(address, key, rpc)
    return measured


def measure_driver(address: str, key: str, rpc: seed.Rpc, load: Load, simulations: list[str]):
    command = [
        sys.executable,
        "-m",
        "bench.driver",
        f"--target={address}",
        f"--key={key}",
        f"--workload={rpc.workload}",
        f"--connections={load.connections}",
        f"--streams={load.streams}",
        f"--warm-up={load.warm_up}",
        f"--seconds={load.seconds}",
        f"--simulations={','.join(simulations)}",
    ]
    result = subprocess.run(
        command, cwd=servers.REPO, capture_output=True, text=True, timeout=load.seconds + 120
    )
    if result.returncode != 0:
        raise RuntimeError(f"the load driver failed:\n{result.stderr}")
    counts = json.loads(result.stdout)
    notes = tuple(f"{n} × {code}" for code, n in sorted(counts["error_codes"].items()))
    return Measurement(
        ok=counts["ok"],
        errors=counts["errors"],
        seconds=counts["seconds"],
        latencies_ms=counts["latencies_ms"],
        notes=notes,
    )


def median_round(rounds: list[Measurement]) -> Measurement:
    """The round with the median req/s (the lower middle one of an even count)."""
    ordered = sorted(rounds, key=lambda m: m.rate)
    return ordered[(len(ordered) - 1) // 2]


def _reply_files(rpcs: list[seed.Rpc], workdir: Path) -> dict[str, Path]:
    files = {}
    for index, rpc in enumerate(rpcs):
        path = workdir / f"reply-{index}.bin"
        path.write_bytes(rpc.reply)
        files[rpc.path] = path
    return files


def _peaks(run: str, server: servers.Subprocess, sampler: servers.RssSampler) -> list:
    return [
        report.RssPeak(run, pid, "main" if pid == server.pid else "child", peak)
        for pid, peak in sampler.stop().items()
    ]


def _processes_label(count: int) -> str:
    return f"{count} process" if count == 1 else f"{count} processes"


def measure(address: str, key: str, rpc: seed.Rpc, load: Load, data: seed.LoadData, workdir):
    """One timed run of ``rpc`` against the server at ``address``, with the right tool."""
    if rpc.workload is None:
        return measure_h2load(address, key, rpc, load, workdir)
    return measure_driver(address, key, rpc, load, data.update_simulation_ids)


def measure_rounds(
    label: str,
    targets: tuple[servers.Subprocess, servers.Subprocess],
    key: str,
    data: seed.LoadData,
    args,
    workdir: Path,
) -> dict[str, tuple[list[Measurement], list[Measurement]]]:
    """Runs (service, bare) for every RPC, ``args.rounds`` times; the runs by RPC name."""
    load = Load(args)
    measured = {rpc.name: ([], []) for rpc in data.rpcs}
    for round_number in range(1, args.rounds + 1):
        for rpc in data.rpcs:
            for target, runs in zip(targets, measured[rpc.name], strict=True):
                try:
                    runs.append(measure(target.address, key, rpc, load, data, workdir))
                finally:
                    # A server that died mid-run fails every call, fast: say so, and why.
                    target.ensure_running(f"{rpc.name}, {label}, round {round_number}")
            service, bare = (runs[-1] for runs in measured[rpc.name])
            log(
                f"[{label}, round {round_number}/{args.rounds}] {rpc.name}: "
                f"{service.rate:,.0f} req/s ({service.errors} errors), bare {bare.rate:,.0f} req/s"
            )
    return measured


def rows(processes: int, measured: dict, load: Load) -> list[report.Row]:
    """The table rows of one process count: the median rounds, errors of all rounds."""
    found = []
    for name, (service_runs, bare_runs) in measured.items():
        row_notes = []
        for run in (*service_runs, *bare_runs):
            row_notes += [note for note in run.notes if note not in row_notes]
        found.append(
            report.Row(
                rpc=name,
                processes=processes,
                concurrency=load.label,
                server=median_round(service_runs),
                bare=median_round(bare_runs),
                errors=sum(run.errors for run in service_runs),
                bare_errors=sum(run.errors for run in bare_runs),
                notes=tuple(row_notes),
            )
        )
    return found


def load_runs(args, db, results: report.Results, workdir: Path) -> None:
    """Every RPC at every process count; the data is seeded once, by the first server."""
    env = servers.environment(db.data_dir, db.server_url)
    _, key = servers.create_tenant_key(env, "bench-load")
    data: seed.LoadData | None = None
    reference: servers.Subprocess | None = None
    wants_sink = args.telemetry is not None or args.telemetry_cost == "on"
    sink = servers.OtlpSink() if wants_sink else None
    if args.telemetry is not None:
        results.settings["telemetry"] = (
            f"metrics on, {args.telemetry:.0%} of calls traced (OTLP to a local sink)"
        )
    try:
        for processes in args.processes:
            label = _processes_label(processes)
            port = servers.free_port()
            log(f"starting simconfig serve with SIMCONFIG_PROCESSES={processes}")
            server = servers.start_service(
                servers.environment(
                    db.data_dir,
                    db.server_url,
                    port=port,
                    processes=processes,
                    telemetry=(
                        sink.settings(args.telemetry)
                        if sink is not None and args.telemetry is not None
                        else None
                    ),
                ),
                processes,
                workdir / f"serve-{processes}.log",
            )
            sampler = servers.RssSampler(server.pid)
            try:
                serving = servers.listening_sockets(port)
                if serving != processes:
                    results.notes.append(
                        f"SIMCONFIG_PROCESSES={processes}: {serving} process(es) served the port"
                    )
                    log(f"warning: {results.notes[-1]}")
                if data is None:
                    log("seeding through the API")
                    client = seed.RawClient(server.address, key)
                    data = seed.seed(client, Load(args).in_flight)
                    client.close()
                    reference = servers.start_reference(
                        _reply_files(data.rpcs, workdir), workdir / "reference.log"
                    )
                measured = measure_rounds(label, (server, reference), key, data, args, workdir)
                results.rows += rows(processes, measured, Load(args))
            finally:
                results.rss += _peaks(label, server, sampler)
                server.stop()
        if sink is not None and data is not None and args.telemetry_cost == "on":
            get_scenario = next(rpc for rpc in data.rpcs if rpc.name == "GetScenario")
            results.telemetry_cost = telemetry_cost.measure(
                db, key, get_scenario, sink, _cost_settings(args), workdir, log=log
            )
    finally:
        if reference is not None:
            reference.stop()
        if sink is not None:
            log(f"the OTLP sink received {sink.spans:,} spans")
            sink.stop()


def _cost_settings(args) -> telemetry_cost.Settings:
    return telemetry_cost.Settings(
        sample=args.telemetry_sample,
        pairs=args.telemetry_pairs,
        seconds=args.telemetry_seconds,
        warm_up=telemetry_cost.WARM_UP_SECONDS,
        connections=args.connections,
        streams=args.streams,
    )


def scale_runs(args, db, results: report.Results, workdir: Path) -> None:
    """The scale questions, against a one-process server (calls are sequential)."""
    env = servers.environment(db.data_dir, db.server_url)
    sizes = [scale.SMALL, scale.LARGE] if args.scale == "full" else [scale.SMALL]
    tenants = {size: servers.create_tenant_key(env, f"bench-scale-{size}") for size in sizes}
    simulations_tenant, simulations_key = servers.create_tenant_key(env, "bench-scale-simulations")
    configs_tenant, configs_key = servers.create_tenant_key(env, "bench-scale-configs")
    log("starting simconfig serve for the scale runs")
    server = servers.start_service(
        servers.environment(db.data_dir, db.server_url, port=servers.free_port(), processes=1),
        1,
        workdir / "serve-scale.log",
    )
    sampler = servers.RssSampler(server.pid)
    engine = bulk.engine_for(db.url)
    clients = []
    try:
        by_size = {}
        for size, (tenant_id, key) in tenants.items():
            clients.append(seed.RawClient(server.address, key))
            by_size[size] = (tenant_id, clients[-1])
        results.latencies += scale.scenarios_in_tenant(engine, by_size, log=log)
        clients.append(seed.RawClient(server.address, simulations_key))
        results.latencies += scale.simulations_in_scenario(
            clients[-1], engine, simulations_tenant, log=log
        )
        clients.append(seed.RawClient(server.address, configs_key))
        results.latencies += scale.config_filter(clients[-1], engine, configs_tenant, log=log)
    finally:
        for client in clients:
            client.close()
        engine.dispose()
        results.rss += _peaks("scale runs, 1 process", server, sampler)
        server.stop()


def _h2load_version() -> str:
    try:
        return subprocess.run(
            [h2load.binary(), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except (OSError, RuntimeError):
        return "not installed"


def _cpu_model() -> str:
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    except OSError:
        match = None
    return match.group(1) if match else platform.processor() or "unknown"


def machine(db: database.BenchDatabase) -> dict[str, str]:
    load1, load5, _ = os.getloadavg()
    return {
        "CPU": f"{os.cpu_count()} × {_cpu_model()} (nproc {os.cpu_count()})",
        "OS": f"{platform.system()} {platform.release()}",
        "load average before the run (1 min, 5 min)": f"{load1:.2f}, {load5:.2f}",
        "Python": platform.python_version(),
        "grpcio": grpc.__version__,
        "database": database.server_version(db.url),
        "h2load": _h2load_version(),
    }


def _command(args, argv: list[str]) -> str:
    """The command that reproduces this run (the database URL and doc flags aside)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--database-url":
            skip = True
        elif not arg.startswith(("--database-url=", "--docs", "--no-docs")):
            kept.append(arg)
    command = "make bench"
    if kept:
        command += " BENCH_ARGS=" + shlex.quote(" ".join(kept))
    if database.is_postgres(args.database_url):
        command = f"SIMCONFIG_DATABASE_URL={shlex.quote(args.database_url)} {command}"
    return command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SIMCONFIG_DATABASE_URL") or None,
        help="PostgreSQL server to create the benchmark's database on "
        "(default: SIMCONFIG_DATABASE_URL; unset: embedded SQLite)",
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--warm-up", type=float, default=1.0, help="unmeasured seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median one is shown")
    parser.add_argument(
        "--processes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=None,
        help="server process counts to measure (default: 1,2 on PostgreSQL, 1 on SQLite)",
    )
    parser.add_argument("--connections", type=int, default=16, help="HTTP/2 connections")
    parser.add_argument("--streams", type=int, default=8, help="calls in flight per connection")
    parser.add_argument(
        "--scale",
        choices=("full", "small", "off"),
        default="full",
        help="full: 1,000 and 1,000,000 scenarios; small: 1,000 only; both with 100,000 "
        "simulations in one scenario; off: no scale runs",
    )
    parser.add_argument(
        "--no-load", action="store_true", help="skip the throughput runs (scale and memory only)"
    )
    parser.add_argument(
        "--telemetry",
        type=float,
        nargs="?",
        const=1.0,
        default=None,
        metavar="SAMPLE",
        help="servers with Prometheus metrics and OpenTelemetry tracing on, SAMPLE of the calls "
        "traced (default 1: all; spans exported over OTLP to a local sink), to compare with a "
        "run without",
    )
    parser.add_argument(
        "--telemetry-cost",
        choices=("on", "off"),
        default=None,
        help="the telemetry cost runs: GetScenario against a server with telemetry off and "
        "one with it on, 2 processes each, in alternating rounds (default: on for PostgreSQL "
        "without --quick, off otherwise)",
    )
    parser.add_argument(
        "--telemetry-sample",
        type=float,
        default=telemetry_cost.DEFAULT_SAMPLE,
        metavar="SAMPLE",
        help="OTEL_TRACES_SAMPLER_ARG of the telemetry-on server in the cost runs "
        "(parentbased_traceidratio; default %(default)s, the README's production setting)",
    )
    parser.add_argument(
        "--telemetry-pairs",
        type=int,
        default=telemetry_cost.DEFAULT_PAIRS,
        help="off/on pairs of rounds in the cost runs (default %(default)s)",
    )
    parser.add_argument(
        "--telemetry-seconds",
        type=float,
        default=telemetry_cost.DEFAULT_SECONDS,
        help="seconds per cost round (default %(default)s)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 round of 2 s, small scale, no docs"
    )
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--docs", dest="docs", action="store_true", default=None)
    docs.add_argument("--no-docs", dest="docs", action="store_false", help="do not write docs/")
    parser.add_argument(
        "--keep-database", action="store_true", help="do not drop the PostgreSQL database"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.warm_up = 2.0, 1, 0.5
        if args.scale == "full":
            args.scale = "small"
    if args.docs is None:
        args.docs = not args.quick
    if args.processes is None:
        args.processes = [1, 2] if database.is_postgres(args.database_url) else [1]
    if args.telemetry_cost is None:
        full = database.is_postgres(args.database_url) and not args.quick
        args.telemetry_cost = "on" if full and not args.no_load else "off"
    if args.telemetry_cost == "on" and args.no_load:
        parser.error("--telemetry-cost on needs the load runs (it uses their data)")
    return args


def measure_all(args, workdir: Path) -> report.Results:
    """Every run the arguments ask for, on a database of the benchmark's own."""
    with database.bench_database(
        args.database_url, workdir / "data", keep=args.keep_database
    ) as db:
        log(f"database: {db.engine_name}; work files (server logs) in {workdir}")
        servers.simconfig(servers.environment(db.data_dir, db.server_url), "migrate")
        results = report.Results(
            machine=machine(db),
            settings={
                "database": db.engine_name,
                "load": (
                    f"{args.connections} connections × {args.streams} calls in flight, "
                    f"{args.rounds} × {args.seconds:g} s (after {args.warm_up:g} s warm-up)"
                ),
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            },
        )
        if not args.no_load:
            load_runs(args, db, results, workdir)
        if args.scale != "off":
            scale_runs(args, db, results, workdir)
    return results


def write_docs(results: report.Results, command: str) -> None:
    plot_name = None
    if results.rows:
        plot_name = "performance.png"
        report.plot(results, DOCS / plot_name)
    (DOCS / "performance.md").write_text(report.markdown(results, command, plot_name))
    log(f"wrote {DOCS / 'performance.md'}" + (f" and {DOCS / plot_name}" if plot_name else ""))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    h2load.binary()  # fail before any setup when h2load is missing
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="simconfig-bench-"))
    try:
        results = measure_all(args, workdir)
    except BaseException:
        log(f"the benchmark failed; server logs are kept in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    print(report.terminal(results))
    if args.docs:
        write_docs(results, _command(args, argv))
    log(f"benchmark took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
