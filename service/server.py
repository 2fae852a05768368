"""Builds the gRPC server: servicers, interceptors, health, reflection, background work."""

from __future__ import annotations

import logging
from concurrent import futures
from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from simulation.v1 import (
    config_service_pb2,
    config_service_pb2_grpc,
    scenario_service_pb2,
    scenario_service_pb2_grpc,
    simulation_service_pb2,
    simulation_service_pb2_grpc,
)

import storage
from service.api.config_service import ConfigServicer
from service.api.interceptors import ErrorInterceptor, TenantInterceptor
from service.api.read_only import read_only_methods
from service.api.scenario_service import ScenarioServicer
from service.api.simulation_service import SimulationServicer
from service.app.authentication import ApiKeyCache, Authenticator
from service.app.configs import ConfigOperations
from service.app.scenarios import ScenarioOperations
from service.app.simulations import SimulationOperations
from service.architect import create_engine
from service.architect.jobs import ArchitectOperations, JobWaiter
from service.architect.worker import ArchitectWorkerPool
from service.background import PeriodicTask
from service.domain.validation import ConfigValidator
from service.settings import Settings

log = logging.getLogger(__name__)

SERVICES = (
    scenario_service_pb2.DESCRIPTOR.services_by_name["ScenarioService"],
    config_service_pb2.DESCRIPTOR.services_by_name["ConfigService"],
    simulation_service_pb2.DESCRIPTOR.services_by_name["SimulationService"],
)
SERVICE_NAMES = tuple(service.full_name for service in SERVICES)
# How often each process checks whether the purge is due; the purge itself runs once per
# scenarios.PURGE_INTERVAL across all processes and replicas.
PURGE_CHECK_SECONDS = 60.0
# How long a cached API key row is trusted: while PostgreSQL's change feed delivers, a
# revoked key is dropped at once and the expiry is only a safety net; without it (SQLite, or
# the feed reconnecting) the expiry alone bounds how long a revoked key keeps working.
API_KEY_CACHE_SECONDS_WITH_FEED = 30.0
API_KEY_CACHE_SECONDS = 1.0
# How long start-up waits for the change feed before serving with the short expiry instead.
CHANGE_FEED_START_SECONDS = 5.0


def open_database(settings: Settings) -> storage.Database:
    """The database the settings point at (the embedded SQLite file by default)."""
    url = settings.database_url or storage.sqlite_url_for(settings.data_dir)
    return storage.Database(
        url,
        pool_size=settings.db_pool_size,
        retry=storage.RetryPolicy(connection_seconds=settings.db_retry_seconds),
        limits=storage.ConnectionLimits(
            statement_timeout=settings.db_statement_timeout,
            idle_in_transaction_timeout=settings.db_idle_in_transaction_timeout,
            tcp_user_timeout=settings.db_tcp_user_timeout,
            pool_timeout=settings.db_pool_timeout,
            probe_timeout=settings.health_probe_timeout,
        ),
    )


class ServiceServer:
    """A started-or-startable server and everything it owns.

    ``stop`` ends background work, lets in-flight calls finish within the grace
    period, then closes the database pool.
    """

    def __init__(self, grpc_server: grpc.Server, database: storage.Database, tasks, on_stop=()):
        self.grpc_server = grpc_server
        self.database = database
        self._tasks = list(tasks)
        self._on_stop = list(on_stop)

    def start(self) -> None:
        """Starts the background tasks, then serving.

        The database change feed gets a moment to connect first, so that cached API keys
        are dropped on revocation from the first call on.
        """
        for task in self._tasks:
            if isinstance(task, storage.NotificationListener):
                task.start(wait=CHANGE_FEED_START_SECONDS)
            else:
                task.start()
        self.grpc_server.start()

    def stop(self, grace: float | None = None) -> None:
        """Stops accepting calls, waits up to ``grace`` seconds for in-flight ones."""
        for task in self._tasks:
            task.stop()
        for callback in self._on_stop:
            callback()
        self.grpc_server.stop(grace).wait()
        self.database.dispose()

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Blocks until the server stops (or ``timeout`` passes)."""
        return self.grpc_server.wait_for_termination(timeout)


def _bind(server: grpc.Server, address: str) -> int:
    """Binds ``address``; a taken or invalid address raises OSError and frees the server."""
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        server.stop(None)
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    if port == 0:
        server.stop(None)
        raise OSError(f"cannot listen on {address}: the address is taken or invalid")
    return port


def create_server(
    settings: Settings, *, database: storage.Database | None = None, share_port: bool = False
) -> tuple[ServiceServer, int]:
    """Creates the server bound to ``settings.address``; returns it (not started) and its port.

    A taken port fails loudly: ``grpc.so_reuseport`` is off, so two servers never
    silently share one. ``share_port`` turns it on for the processes of one ``serve``
    (see :mod:`service.processes`), whose parent made sure the port was free.
    """
    database = database or open_database(settings)
    key_cache = ApiKeyCache(
        ttl=API_KEY_CACHE_SECONDS_WITH_FEED,
        fallback_ttl=API_KEY_CACHE_SECONDS,
        max_entries=settings.api_key_cache_size,
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(
            max_workers=settings.worker_threads, thread_name_prefix="simconfig-rpc"
        ),
        interceptors=[
            TenantInterceptor(Authenticator(database, key_cache), read_only_methods(SERVICES)),
            ErrorInterceptor(),
        ],
        options=[
            ("grpc.so_reuseport", 1 if share_port else 0),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
        ],
    )
    # Bind before building anything that holds resources (engine channel, worker threads),
    # so a taken port leaves nothing behind.
    port = _bind(server, settings.address)
    scenarios = ScenarioOperations(
        database, retention=timedelta(days=settings.scenario_retention_days)
    )
    # List responses stay well under the send limit (headers and envelope need room too).
    budget = settings.max_message_bytes * 3 // 4
    scenario_service_pb2_grpc.add_ScenarioServiceServicer_to_server(
        ScenarioServicer(scenarios, response_budget=budget), server
    )
    validator = ConfigValidator()
    # -- architect: durable jobs queued by the API, run by worker threads in every replica --
    engine = create_engine(
        settings.architect_engine,
        remote_address=settings.architect_address,
        remote_timeout=settings.architect_timeout,
    )
    # Half the RPC threads at most may block in `wait: true`; the rest keep serving.
    waiter = JobWaiter(database, max_waiters=max(1, settings.worker_threads // 2))
    architect_workers = ArchitectWorkerPool.create(
        database,
        engine,
        validator,
        count=settings.architect_workers,
        lease_seconds=settings.architect_lease_seconds,
        poll_interval=settings.architect_poll_seconds,
        on_finished=waiter.notify,
    )
    architect = ArchitectOperations(
        database,
        validator,
        max_attempts=settings.architect_max_attempts,
        waiter=waiter,
        on_queued=architect_workers.wake,
    )
    # -- end architect --
    simulations = SimulationOperations(database)
    config_service_pb2_grpc.add_ConfigServiceServicer_to_server(
        ConfigServicer(
            ConfigOperations(database, validator),
            simulations,
            architect=architect,
            response_budget=budget,
        ),
        server,
    )
    simulation_service_pb2_grpc.add_SimulationServiceServicer_to_server(
        SimulationServicer(simulations, architect=architect, response_budget=budget),
        server,
    )

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )

    def probe_database() -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if database.ping()
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            health_servicer.set(name, status)

    # Revoked keys are dropped from memory the moment PostgreSQL says so (None on SQLite).
    key_changes = database.listener(
        {storage.API_KEYS_CHANNEL: key_cache.evict}, on_sync=key_cache.set_synced
    )
    tasks = [
        *([key_changes] if key_changes is not None else []),
        PeriodicTask("health-probe", settings.health_check_interval, probe_database),
        PeriodicTask("scenario-purge", PURGE_CHECK_SECONDS, scenarios.purge_expired),
        # Stopped before the database is disposed; a worker stuck in a slow engine call is
        # waited for briefly, then its job is handed back to the queue for another replica.
        architect_workers,
    ]
    return ServiceServer(
        server,
        database,
        tasks,
        on_stop=[health_servicer.enter_graceful_shutdown, waiter.close, engine.close],
    ), port
