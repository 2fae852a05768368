"""Builds the gRPC server: servicers, interceptors, health, reflection, background work."""

from __future__ import annotations

import logging
import threading
import time
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
    template_service_pb2,
    template_service_pb2_grpc,
    webhook_service_pb2,
    webhook_service_pb2_grpc,
)

import storage
from service.api.access import AccessInterceptor
from service.api.config_service import ConfigServicer
from service.api.fair_executor import FairExecutor
from service.api.interceptors import ErrorInterceptor, TenantInterceptor, in_a_call
from service.api.read_only import read_only_methods
from service.api.scenario_service import ScenarioServicer
from service.api.simulation_service import SimulationServicer
from service.api.template_service import TemplateServicer
from service.api.tenant_limits import TenantLimits
from service.api.webhook_service import WebhookServicer
from service.app import page_tokens
from service.app.authentication import ApiKeyCache, Authenticator
from service.app.batches import BatchRequestRetention
from service.app.configs import ConfigOperations, ConfigView
from service.app.conventions import utc_now
from service.app.event_feed import EventFeed
from service.app.event_watch import EventWatch
from service.app.read_cache import ReadCache
from service.app.scenarios import ScenarioOperations
from service.app.simulations import SimulationOperations
from service.app.templates import TemplateOperations
from service.app.webhooks import WebhookDeliveryRetention, WebhookOperations
from service.architect import create_engine
from service.architect.jobs import ArchitectOperations, JobWaiter
from service.architect.worker import HAND_BACK_SECONDS, ArchitectWorkerPool
from service.background import PeriodicTask
from service.domain.validation import ConfigValidator
from service.settings import Settings
from service.telemetry.metrics import ServerMetrics
from service.webhooks.sender import WebhookSender
from service.webhooks.worker import RetryPolicy, WebhookWorkerPool
from storage.tenancy import as_owner

log = logging.getLogger(__name__)

SERVICES = (
    scenario_service_pb2.DESCRIPTOR.services_by_name["ScenarioService"],
    config_service_pb2.DESCRIPTOR.services_by_name["ConfigService"],
    simulation_service_pb2.DESCRIPTOR.services_by_name["SimulationService"],
    template_service_pb2.DESCRIPTOR.services_by_name["TemplateService"],
    webhook_service_pb2.DESCRIPTOR.services_by_name["WebhookService"],
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
# How long stopping waits for background tasks at least, whatever the grace period: an idle
# task ends within this (the change feed polls twice a second).
TASK_STOP_FLOOR_SECONDS = 1.0
# How long start-up waits for the change feed before serving with the short expiry instead.
CHANGE_FEED_START_SECONDS = 5.0
# How often each process counts the architect queue for its metrics (two indexed counts).
QUEUE_METRICS_SECONDS = 15.0
# How much of a request body a client may send before the server asks for it (the HTTP/2
# stream window), fixed instead of grown by grpc's bandwidth probing. Probing widened the
# window to several MiB per call, and grpc took that much of a body in even for a call refused
# from its metadata: 64 concurrent 4 MiB requests without a key grew the server by 10-73 MiB;
# with this window, by 4-11 MiB. 1 MiB still fills a 100 Mbit/s link at 80 ms round trip.
STREAM_WINDOW_BYTES = 1024 * 1024


# The name the page token key is stored under (not the key).
PAGE_TOKEN_KEY_NAME = "page_token"  # noqa: S105


def page_token_secret(settings: Settings, database: storage.Database) -> str:
    """The page token key: from the settings, else the one stored (made by the first server)."""
    if settings.page_token_secret is not None:
        return settings.page_token_secret.get_secret_value()
    # Read on a call's first use of a page token: the key is the service's, not the tenant's.
    with as_owner():
        return _stored_page_token_secret(database)


def _stored_page_token_secret(database: storage.Database) -> str:
    stored = database.run(lambda uow: uow.secrets.get(PAGE_TOKEN_KEY_NAME))
    if stored is not None:
        return stored
    secret = page_tokens.new_signing_secret()
    try:
        database.run(lambda uow: uow.secrets.add(PAGE_TOKEN_KEY_NAME, secret, utc_now()))
    except storage.AlreadyExists:
        # Another server stored one first: everyone signs with that one.
        winner = database.run(lambda uow: uow.secrets.get(PAGE_TOKEN_KEY_NAME))
        if winner is None:
            raise storage.Unavailable("the page token key was stored and then not found") from None
        return winner
    return secret


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
        tenant_wall=settings.db_tenant_wall,
    )


class ServiceServer:
    """A started-or-startable server and everything it owns.

    ``stop`` turns health NOT_SERVING, stops accepting calls and lets in-flight ones finish
    while background work stops beside them, all within the grace period, then closes the
    database pool.
    """

    def __init__(
        self,
        grpc_server: grpc.Server,
        database: storage.Database,
        tasks,
        on_stop=(),
        metrics: ServerMetrics | None = None,
        executor: FairExecutor | None = None,
        before_drain=(),
    ):
        self.grpc_server = grpc_server
        self.database = database
        # This server's metrics (None when SIMCONFIG_METRICS_PORT=0); the caller serves them.
        self.metrics = metrics
        self._tasks = list(tasks)
        self._on_stop = list(on_stop)
        self._before_drain = list(before_drain)
        self._executor = executor

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
        """Stops within ``grace`` seconds (None: waits for every call), in this order.

        Health turns NOT_SERVING first, so load balancers stop sending calls; then the server
        stops accepting and drains the calls in flight while every background task stops on
        a thread of its own (architect jobs still running are handed back to the queue), so
        the total is bounded by the grace period, not by the number of workers.
        """
        deadline = None if grace is None else time.monotonic() + grace
        for callback in self._before_drain:
            callback()
        drained = self.grpc_server.stop(grace)
        stopping = [
            threading.Thread(
                target=task.stop,
                kwargs=self._stop_limit(task, grace),
                name=f"stop-{getattr(task, 'name', 'task')}",
            )
            for task in self._tasks
        ]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            # Idle tasks end in moments: they get that moment even with no grace at all, so
            # none still holds a connection when the pool is closed below.
            thread.join(
                None
                if deadline is None
                else max(deadline - time.monotonic(), TASK_STOP_FLOOR_SECONDS)
            )
        for callback in self._on_stop:
            callback()
        # gRPC ends this by itself at the grace period, cancelling the calls still running.
        drained.wait()
        if self._executor is not None:
            # Every call has ended: nothing is left to run, the threads just go.
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.database.dispose()

    @staticmethod
    def _stop_limit(task, grace: float | None) -> dict:
        # The architect workers get the grace period less a moment for handing their jobs
        # back; other tasks stop in moments with their own short timeouts.
        if grace is None or not isinstance(task, ArchitectWorkerPool):
            return {}
        return {"timeout": max(0.0, grace - HAND_BACK_SECONDS)}

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Blocks until the server stops (or ``timeout`` passes)."""
        return self.grpc_server.wait_for_termination(timeout)


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from SIMCONFIG_TLS_CERT/KEY (None: plaintext).

    With SIMCONFIG_TLS_CLIENT_CA, a client must present a certificate that CA signed (mutual
    TLS); without it, any client that trusts the server's certificate may connect.
    """
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _bind(
    server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None = None
) -> int:
    """Binds ``address``; a taken or invalid address raises OSError and frees the server."""
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
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
    metrics = ServerMetrics() if settings.metrics_port else None
    if metrics is not None:
        database.observe_retries(metrics.retried)
    traced = settings.tracing_mode() is not None
    # Outermost first: the RPC's span is open while the access line is written, so the line
    # carries its trace id.
    interceptors = []
    observers: list = [metrics] if metrics is not None else []
    if traced:
        from service.telemetry import tracing  # imports OpenTelemetry: only when tracing

        interceptors.append(tracing.rpc_interceptor())
        observers.append(tracing.SpanStatusObserver())
        database.trace_statements(tracing.trace.get_tracer_provider())
    # Read (or made) on first use: the server starts even while the database is down.
    page_tokens.use_signing_key_from(lambda: page_token_secret(settings, database))
    key_cache = ApiKeyCache(
        ttl=API_KEY_CACHE_SECONDS_WITH_FEED,
        fallback_ttl=API_KEY_CACHE_SECONDS,
        max_entries=settings.api_key_cache_size,
    )
    executor = FairExecutor(
        settings.worker_threads,
        reserved=settings.rpc_threads_reserved,
        thread_name_prefix="simconfig-rpc",
    )
    limits = TenantLimits(
        executor.in_flight,
        max_calls=settings.tenant_max_calls,
        rate=settings.tenant_requests_per_second,
        burst=settings.tenant_request_burst,
    )
    server = grpc.server(
        # grpc takes any concurrent.futures.Executor; its stubs name ThreadPoolExecutor only.
        executor,  # type: ignore[arg-type]
        interceptors=[
            *interceptors,
            # Outside the others, so it sees the status every call ends with, refusals included.
            AccessInterceptor(observers=tuple(observers)),
            TenantInterceptor(
                Authenticator(
                    database, key_cache, on_lookup=metrics.key_lookup if metrics else None
                ),
                read_only_methods(SERVICES),
                limits,
            ),
            ErrorInterceptor(),
        ],
        options=[
            ("grpc.so_reuseport", 1 if share_port else 0),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES),
        ],
    )
    # Bind before building anything that holds resources (engine channel, worker threads),
    # so a taken port leaves nothing behind.
    try:
        port = _bind(server, settings.address, server_credentials(settings))
    except OSError:
        executor.shutdown(wait=False)
        raise
    # Warm GetScenario calls answered from memory, exact while PostgreSQL's change feed is
    # heard (service.app.read_cache); off on SQLite, which has no feed.
    scenario_cache: ReadCache[storage.Scenario] = ReadCache(max_entries=settings.read_cache_entries)
    config_cache: ReadCache[ConfigView] = ReadCache(max_entries=settings.read_cache_entries)

    def after_a_commit() -> None:
        # A call's own write is dropped from memory before the call answers, so its caller
        # reads it back; background work (job claims, purges, deliveries) is heard through the
        # change feed within moments, like another replica's, and leaves the rest in memory.
        if in_a_call():
            scenario_cache.clear()
            config_cache.clear()

    database.on_commit(after_a_commit)
    scenarios = ScenarioOperations(
        database,
        retention=timedelta(days=settings.scenario_retention_days),
        cache=scenario_cache,
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
    waiter = JobWaiter(
        database, max_waiters=max(1, settings.worker_threads // 2), on_done=config_cache.evict
    )
    architect_workers = ArchitectWorkerPool.create(
        database,
        engine,
        validator,
        count=settings.architect_workers,
        lease_seconds=settings.architect_lease_seconds,
        poll_interval=settings.architect_poll_seconds,
        on_finished=waiter.notify,
        on_outcome=metrics.job_finished if metrics is not None else None,
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
    # -- watch: streams read the events table, woken by the database change feed --
    event_feed = EventFeed(
        max_watchers=settings.watch_stream_limit, poll_seconds=settings.watch_poll_seconds
    )
    watch = EventWatch(database, event_feed, keepalive_seconds=settings.watch_keepalive_seconds)
    config_service_pb2_grpc.add_ConfigServiceServicer_to_server(
        ConfigServicer(
            ConfigOperations(database, validator, cache=config_cache),
            simulations,
            architect=architect,
            response_budget=budget,
        ),
        server,
    )
    simulation_service_pb2_grpc.add_SimulationServiceServicer_to_server(
        SimulationServicer(simulations, architect=architect, response_budget=budget, watch=watch),
        server,
    )
    templates = TemplateOperations(
        database, validator, retention=timedelta(days=settings.scenario_retention_days)
    )
    template_service_pb2_grpc.add_TemplateServiceServicer_to_server(
        TemplateServicer(templates, simulations, response_budget=budget), server
    )
    webhook_service_pb2_grpc.add_WebhookServiceServicer_to_server(
        WebhookServicer(WebhookOperations(database, allow_private=settings.webhook_allow_private)),
        server,
    )

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )

    def probe_database() -> None:
        answered = database.ping()
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if answered
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            health_servicer.set(name, status)
        if metrics is not None:
            metrics.set_serving(answered)
            metrics.set_pool(*database.pool_status())
        if answered:
            # Workers that backed off during an outage resume now, not up to 30 s later.
            architect_workers.database_answered()

    webhook_workers = WebhookWorkerPool(
        database,
        WebhookSender(
            timeout=settings.webhook_timeout_seconds,
            max_response_bytes=settings.webhook_max_response_bytes,
            allow_private=settings.webhook_allow_private,
        ),
        RetryPolicy(
            base_seconds=settings.webhook_retry_base_seconds,
            max_seconds=settings.webhook_retry_max_seconds,
            window_seconds=settings.webhook_retry_window_seconds,
        ),
        count=settings.webhook_workers,
        lease_seconds=settings.webhook_lease_seconds,
        poll_seconds=settings.webhook_poll_seconds,
    )

    # Revoked keys are dropped from memory the moment PostgreSQL says so, so are changed
    # scenarios and configs; watch streams wake when their tenant commits an event, and webhook
    # workers when a delivery becomes due (None on SQLite: short expiry and polling).
    def on_sync(synced: bool) -> None:
        key_cache.set_synced(synced)
        event_feed.set_synced(synced)
        scenario_cache.set_synced(synced)
        config_cache.set_synced(synced)
        if synced:
            webhook_workers.wake()

    changes = database.listener(
        {
            storage.API_KEYS_CHANNEL: key_cache.evict,
            storage.EVENTS_CHANNEL: event_feed.notify,
            storage.WEBHOOK_DELIVERIES_CHANNEL: webhook_workers.wake,
            storage.SCENARIOS_CHANNEL: scenario_cache.evict,
            storage.SIMULATIONS_CHANNEL: config_cache.evict,
        },
        on_sync=on_sync,
    )
    if changes is not None:
        # A client that wrote through another replica reads its write here too: nothing is
        # served from memory while a notification is unread or being handled.
        scenario_cache.follow(changes.maybe_behind)
        config_cache.follow(changes.maybe_behind)
    tasks = [
        *([changes] if changes is not None else []),
        PeriodicTask("health-probe", settings.health_check_interval, probe_database),
        PeriodicTask("scenario-purge", PURGE_CHECK_SECONDS, scenarios.purge_expired),
        PeriodicTask("template-purge", PURGE_CHECK_SECONDS, templates.purge_expired),
        PeriodicTask(
            "batch-request-purge",
            PURGE_CHECK_SECONDS,
            BatchRequestRetention(database).purge_expired,
        ),
        PeriodicTask(
            "webhook-delivery-purge",
            PURGE_CHECK_SECONDS,
            WebhookDeliveryRetention(
                database, keep=timedelta(days=settings.webhook_delivery_retention_days)
            ).purge_expired,
        ),
        # Stopped before the database is disposed; a worker stuck in a slow engine call is
        # waited for briefly, then its job is handed back to the queue for another replica.
        architect_workers,
        webhook_workers,
    ]
    if metrics is not None:
        tasks.append(
            PeriodicTask(
                "queue-metrics", QUEUE_METRICS_SECONDS, lambda: record_queue(database, metrics)
            )
        )
    return ServiceServer(
        server,
        database,
        tasks,
        # Health turns NOT_SERVING first; watch streams end at once with a status their
        # clients resume from elsewhere, and waiting calls return, so none holds the drain up.
        before_drain=[health_servicer.enter_graceful_shutdown, event_feed.close, waiter.close],
        on_stop=[engine.close],
        executor=executor,
        metrics=metrics,
    ), port


def record_queue(database: storage.Database, metrics: ServerMetrics) -> None:
    """Puts the architect queue's figures (jobs waiting and running, oldest wait) in metrics."""
    counts, oldest = database.read(lambda uow: uow.jobs.queue_summary())
    age = (utc_now() - oldest).total_seconds() if oldest is not None else 0.0
    metrics.set_jobs({state.lower(): count for state, count in counts.items()}, max(0.0, age))
