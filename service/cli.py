"""The ``simconfig`` command: serve, migrate, and manage tenants and API keys."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence

import storage
from service.app import tenants
from service.domain import errors
from service.processes import Supervisor, reserve_port
from service.server import create_server, open_database
from service.settings import Settings, SettingsError
from service.telemetry.logs import configure_logging
from service.telemetry.metrics import SharedMetricsDirectory, flush_pending, serve_metrics

log = logging.getLogger("simconfig")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simconfig",
        description="Simulation Config Service. Settings come from SIMCONFIG_* variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument(
        "--no-migrate", action="store_true", help="do not apply migrations at start-up"
    )
    serve.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="server processes on the one port (default: SIMCONFIG_PROCESSES, or one per CPU "
        "on PostgreSQL and one on the embedded database)",
    )
    commands.add_parser("migrate", help="apply database migrations and exit")

    tenant_parser = commands.add_parser("tenants", help="manage tenants")
    tenant_commands = tenant_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create_tenant = tenant_commands.add_parser("create", help="create a tenant, print its id")
    create_tenant.add_argument("name")
    list_tenants = tenant_commands.add_parser("list", help="list tenants (a table, or --json)")
    list_tenants.add_argument("--json", action="store_true", help="one JSON array of objects")

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create_key = key_commands.add_parser("create", help="create a key, print it once")
    create_key.add_argument("--tenant", required=True, help="tenant id")
    create_key.add_argument("--scope", choices=tenants.SCOPES, default="write")
    create_key.add_argument("--description", default="")
    list_keys = key_commands.add_parser("list", help="list a tenant's keys (a table, or --json)")
    list_keys.add_argument("--tenant", required=True, help="tenant id")
    list_keys.add_argument("--json", action="store_true", help="one JSON array of objects")
    revoke_key = key_commands.add_parser("revoke", help="revoke a key")
    revoke_key.add_argument("key_id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``simconfig`` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"simconfig: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if settings.uses_embedded_database:
        try:
            storage.sqlite_url_for(settings.data_dir)
        except OSError as exc:
            print(
                f"simconfig: configuration error: SIMCONFIG_DATA_DIR={settings.data_dir} "
                f"cannot hold the database: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
    try:
        if args.command == "serve":
            if args.processes is not None:
                if not 1 <= args.processes <= 64:
                    print("simconfig: --processes must be from 1 to 64", file=sys.stderr)
                    return 2
                settings = settings.replace(processes=args.processes)
            return _serve(settings, migrate=not args.no_migrate and settings.migrate_on_start)
        database = open_database(settings)
        try:
            if args.command == "migrate":
                database.migrate()
                print(f"database at revision {database.current_revision()}")
                return 0
            if database.current_revision() is None:
                print(
                    "simconfig: the database has no schema yet; run 'simconfig migrate' first",
                    file=sys.stderr,
                )
                return 1
            return _admin(database, args)
        finally:
            database.dispose()
    except errors.ServiceError as exc:
        print(f"simconfig: {exc.message}", file=sys.stderr)
        return 1
    except storage.NotFound as exc:
        print(f"simconfig: {exc.entity} {exc.id!r} not found", file=sys.stderr)
        return 1
    except storage.AlreadyExists as exc:
        print(
            f"simconfig: a {exc.entity} with {exc.field} {exc.value!r} already exists",
            file=sys.stderr,
        )
        return 1
    except storage.Unavailable as exc:
        print(f"simconfig: database unavailable: {exc}", file=sys.stderr)
        return 1
    except storage.StorageError as exc:
        print(f"simconfig: database error: {exc}", file=sys.stderr)
        return 1


def _print_rows(rows: list[dict[str, str]], columns: tuple[str, ...], *, as_json: bool) -> None:
    """A list command's output: tab-separated with a header line, or one JSON array."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print("\t".join(column.upper() for column in columns))
    for row in rows:
        print("\t".join(row[column] for column in columns))


def _admin(database: storage.Database, args) -> int:
    if args.command == "tenants" and args.action == "create":
        tenant = tenants.new_tenant(database, args.name)
        print(tenant.id)
    elif args.command == "tenants" and args.action == "list":
        _print_rows(
            [
                {"id": t.id, "name": t.name, "create_time": t.create_time.isoformat()}
                for t in tenants.list_tenants(database)
            ],
            ("id", "name", "create_time"),
            as_json=args.json,
        )
    elif args.command == "keys" and args.action == "create":
        issued = tenants.issue_key(database, args.tenant, args.scope, args.description)
        print(
            f"key id {issued.record.id} (scope {issued.record.scope}); the key is shown only once:",
            file=sys.stderr,
        )
        print(issued.secret)
    elif args.command == "keys" and args.action == "list":
        _print_rows(
            [
                {
                    "id": key.id,
                    "scope": key.scope,
                    "state": "revoked" if key.revoke_time else "active",
                    "create_time": key.create_time.isoformat(),
                    "description": key.description,
                }
                for key in tenants.list_keys(database, args.tenant)
            ],
            ("id", "scope", "state", "create_time", "description"),
            as_json=args.json,
        )
    elif args.command == "keys" and args.action == "revoke":
        key = tenants.revoke_key(database, args.key_id)
        print(f"revoked {key.id}")
    return 0


def _create_demo_tenant(database: storage.Database, settings: Settings, port: int) -> None:
    """On an empty embedded database, creates a demo tenant and prints its key once."""
    if tenants.count_tenants(database) > 0:
        return
    tenant = tenants.new_tenant(database, "demo")
    issued = tenants.issue_key(database, tenant.id, "write", "demo key")
    address = f"{settings.host}:{port}"
    print(
        "\n"
        f"Created demo tenant {tenant.id}. Its API key (shown only once):\n\n"
        f"  export SIMCONFIG_API_KEY={issued.secret}\n\n"
        "Try:\n\n"
        f'  .venv/bin/grpcurl -plaintext -H "x-api-key: $SIMCONFIG_API_KEY" '
        f"{address} simulation.v1.ScenarioService/ListScenarios\n",
        flush=True,
    )


SWITCH_INTERVAL_SECONDS = 0.0005
# Allocations between two collections of the youngest generation (Python's default: 700). A
# call allocates a few thousand tracked objects (dicts, lists, records), nearly all freed by
# reference counting; at 700 the collector ran several times per call.
GC_YOUNG_THRESHOLD = 20_000


def _settle_garbage_collector() -> None:
    """Collect less often, and never again walk what the server built to serve.

    Called once the server is built: the modules, compiled statements and handler tables
    alive then live as long as the process, so they are frozen out of every later collection.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)


def _serve(settings: Settings, *, migrate: bool) -> int:
    database = open_database(settings)
    if migrate:
        database.migrate()
        log.info("database schema at revision %s", database.current_revision())
    if not database.schema_is_current():
        print(
            f"simconfig: the database schema is at {database.current_revision() or 'nothing'}, "
            f"this server needs {storage.head_revision()}; run 'simconfig migrate' first",
            file=sys.stderr,
        )
        database.dispose()
        return 1
    # A thread waiting for the interpreter lock gets it after at most this long. Python's 5 ms
    # default lets one tenant's CPU-heavy calls (long lists) add 5 ms to every hand-over a short
    # call needs (accept, read, database, reply), for every other tenant's call.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    if settings.process_count == 1:
        return _serve_in_this_process(settings, database)
    return _serve_in_processes(settings, database)


def _serve_in_this_process(settings: Settings, database: storage.Database) -> int:
    tracer_provider = _start_tracing(settings)
    try:
        server, port = create_server(settings, database=database)
    except OSError as exc:
        print(f"simconfig: {exc}", file=sys.stderr)
        database.dispose()
        return 1
    _settle_garbage_collector()
    metrics_server = None
    if server.metrics is not None:
        try:
            metrics_server = _serve_metrics(settings, server.metrics.registry)
        except OSError as exc:
            print(f"simconfig: {exc}", file=sys.stderr)
            server.stop(0)
            return 1
    # Only once the port is ours: a key printed for a server that cannot start is lost.
    if settings.uses_embedded_database and settings.demo_tenant:
        _create_demo_tenant(database, settings, port)
    received = _record_stop_signals()
    server.start()
    log.info(
        "simconfig listening on %s:%d (database: %s%s)",
        settings.host,
        port,
        _where(settings),
        _security(settings),
    )
    _stop_when_signalled(server, settings, received)
    if metrics_server is not None:
        metrics_server.shutdown()
    if tracer_provider is not None:
        tracer_provider.shutdown()  # sends the spans still batched
    log.info("simconfig stopped")
    return 0


def _start_tracing(settings: Settings):
    """This process's tracer provider when tracing is on (see service.telemetry.tracing)."""
    mode = settings.tracing_mode()
    if mode is None:
        return None
    from service.telemetry.tracing import start_tracing

    log.info("tracing on (%s)", mode)
    return start_tracing(mode)


def _serve_metrics(settings: Settings, registry):
    """Serves Prometheus metrics on SIMCONFIG_METRICS_HOST:PORT; OSError if the port is taken."""
    server = serve_metrics(settings.metrics_host, settings.metrics_port, registry)
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    return server


def _serve_in_processes(settings: Settings, database: storage.Database) -> int:
    count = settings.process_count
    try:
        held, port = reserve_port(settings.host, settings.port)
    except OSError as exc:
        print(f"simconfig: {exc}", file=sys.stderr)
        database.dispose()
        return 1
    # The children's metric values meet in one directory; this process serves their sum.
    shared_metrics = SharedMetricsDirectory() if settings.metrics_port else None
    metrics_server = None
    if shared_metrics is not None:
        try:
            metrics_server = _serve_metrics(settings, shared_metrics.registry())
        except OSError as exc:
            print(f"simconfig: {exc}", file=sys.stderr)
            shared_metrics.remove()
            held.close()
            database.dispose()
            return 1
    if settings.uses_embedded_database and settings.demo_tenant:
        _create_demo_tenant(database, settings, port)
    # Children open their own pools: no connection may cross the fork.
    database.dispose()
    settings = settings.replace(port=port)

    def child(index: int, report_ready) -> int:
        # After the fork: the exporter's threads and connections are this process's own.
        tracer_provider = _start_tracing(settings)
        child_database = open_database(settings)
        server, _ = create_server(settings, database=child_database, share_port=True)
        _settle_garbage_collector()
        received = _record_stop_signals()
        server.start()
        report_ready()
        _stop_when_signalled(server, settings, received)
        # The parent serves the metric files after this process is gone: the last increments
        # must be in them.
        flush_pending()
        if tracer_provider is not None:
            tracer_provider.shutdown()
        return 0

    def announce() -> None:
        log.info(
            "simconfig listening on %s:%d (database: %s, %d processes%s)",
            settings.host,
            port,
            _where(settings),
            count,
            _security(settings),
        )

    try:
        code = Supervisor(
            count,
            child,
            grace_period=settings.grace_period,
            held_port=held,
            on_exit=shared_metrics.process_exited if shared_metrics is not None else None,
        ).run(on_ready=announce)
    finally:
        held.close()
        if metrics_server is not None:
            metrics_server.shutdown()
        if shared_metrics is not None:
            shared_metrics.remove()
    log.info("simconfig stopped")
    return code


def _where(settings: Settings) -> str:
    if settings.uses_embedded_database:
        return "embedded SQLite"
    return "postgresql"


def _security(settings: Settings) -> str:
    if settings.tls_client_ca is not None:
        return ", mutual TLS"
    return ", TLS" if settings.uses_tls else ", plaintext"


def _record_stop_signals() -> list[int]:
    # The handler only records the signal: taking a lock in a signal handler (Event.set,
    # logging) can deadlock against the main thread holding that same lock.
    received: list[int] = []

    def shut_down(signum, _frame):
        received.append(signum)

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    return received


def _stop_when_signalled(server, settings: Settings, received: list[int]) -> None:
    while not received:
        time.sleep(0.2)
    log.info(
        "received %s, shutting down (grace %.1fs)",
        signal.Signals(received[0]).name,
        settings.grace_period,
    )
    server.stop(settings.grace_period)


if __name__ == "__main__":
    sys.exit(main())
