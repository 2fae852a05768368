"""The database handle: engine setup per dialect, transactions with retries, migrations."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import InvalidatePoolError, SQLAlchemyError

from storage.driver_errors import driver_errors
from storage.notifications import NotificationListener
from storage.retry import RetryPolicy
from storage.tenancy import SERVICE_ROLE, TENANT_SETTING, current_tenant
from storage.unit_of_work import ReadUnitOfWork, SqlUnitOfWork, UnitOfWork

logger = logging.getLogger(__name__)

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5_000
POSTGRES_CONNECT_TIMEOUT_S = 5
# Any constant shared by all replicas: serialises concurrent `migrate` runs on PostgreSQL.
_MIGRATION_LOCK_KEY = 0x51A1C0F6
# Where a tenant-scoped pooled connection remembers the tenant its session setting holds.
_TENANT_INFO_KEY = "simconfig_tenant"


@dataclass(frozen=True)
class ConnectionLimits:
    """How long any wait on PostgreSQL may last, so a hung database never hangs a caller.

    All in seconds. The statement and idle-in-transaction timeouts are enforced by the
    server; ``tcp_user_timeout`` and keepalives make the client notice a peer that stopped
    answering (a frozen host, a cut network) instead of waiting on the socket forever;
    ``pool_timeout`` bounds the wait for a free pooled connection; ``probe_timeout`` is
    how long the health probe waits for ``SELECT 1`` before calling the database down.
    """

    statement_timeout: float = 30.0
    idle_in_transaction_timeout: float = 60.0
    tcp_user_timeout: float = 10.0
    pool_timeout: float = 5.0
    probe_timeout: float = 1.0

    def connect_args(self) -> dict[str, Any]:
        """psycopg connection parameters that apply these limits to every session."""
        keepalive = max(1, int(self.tcp_user_timeout / 3))
        return {
            "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
            "options": (
                f"-c statement_timeout={_ms(self.statement_timeout)} "
                f"-c idle_in_transaction_session_timeout={_ms(self.idle_in_transaction_timeout)}"
            ),
            "keepalives": 1,
            "keepalives_idle": keepalive,
            "keepalives_interval": keepalive,
            "keepalives_count": 3,
            "tcp_user_timeout": _ms(self.tcp_user_timeout),
        }


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def sqlite_url_for(data_dir: str | Path) -> str:
    """Return the URL of the embedded default database in ``data_dir``, creating the directory."""
    directory = Path(data_dir).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'simconfig.db'}"


class Database:
    """A configured engine plus the ways to use it: units of work, ``run``, ping, migrate.

    Nothing connects until the first unit of work, ping or migration.

    On PostgreSQL, work done while a tenant is bound (:func:`storage.tenancy.acting_for`, as
    the API edge does for each call) runs on pools of its own whose connections act as
    :data:`~storage.tenancy.SERVICE_ROLE` with the tenant in their session, so row-level
    security hides every other tenant's rows even from a query that forgot its filter. Work
    with no tenant bound (key lookups, workers, purges, migrations) runs on the owner's pools.
    ``tenant_wall=False`` runs everything as the owner (the filters remain the only wall).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        retry: RetryPolicy | None = None,
        limits: ConnectionLimits | None = None,
        echo: bool = False,
        tenant_wall: bool = True,
    ) -> None:
        self._retry = retry or RetryPolicy()
        self._limits = limits or ConnectionLimits()
        # The health probe runs on a thread of its own, so a probe stuck on a frozen database
        # is abandoned after probe_timeout rather than waited for.
        self._probe: _Probe | None = None
        self._probe_connection: psycopg.Connection | None = None
        self._probe_lock = threading.Lock()
        self._commit_listeners: list[Callable[[], None]] = []
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            self._engine = _sqlite_engine(url, echo=echo, writes=True)
            self._read_engine = _sqlite_engine(url, echo=echo, writes=False)
        else:
            # No pre-ping: it would cost a round trip per checkout. A connection found dead
            # fails its first statement instead, and the retry policy runs the whole
            # transaction (or read) again on a fresh one.
            options: dict[str, Any] = {
                "echo": echo,
                "pool_size": pool_size,
                "pool_timeout": self._limits.pool_timeout,
                "connect_args": self._limits.connect_args(),
                # Config documents are JSON columns, encoded on every write and decoded on
                # every cold read: orjson does both several times faster than the json module.
                "json_serializer": _json_dumps,
                "json_deserializer": orjson.loads,
            }
            self._engine = create_engine(url, **options)
            # Reads run in autocommit: one statement, no BEGIN or COMMIT around it, and
            # nothing to roll back when the connection goes back to the pool.
            self._read_engine = create_engine(
                url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **options
            )
        # The pools of tenant-scoped work: the owner's own where there is no wall.
        self._tenant_engine, self._tenant_read_engine = self._engine, self._read_engine
        if tenant_wall and self.dialect == "postgresql":
            self._tenant_engine = _confined(create_engine(url, **options))
            self._tenant_read_engine = _confined(
                create_engine(
                    url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **options
                )
            )

    @property
    def dialect(self) -> str:
        """The engine's dialect name: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    @property
    def engine(self) -> Engine:
        """The owner's engine of transactions, for tests and tooling; services use units of work."""
        return self._engine

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine: transactions and autocommit reads, the owner's and tenants' (tests)."""
        return tuple(
            dict.fromkeys(
                (self._engine, self._read_engine, self._tenant_engine, self._tenant_read_engine)
            )
        )

    def _scoped(self) -> tuple[Engine, Engine]:
        # Chosen per unit of work: a bound tenant gets the confined pools, anything else
        # (no call, or a call before its key is resolved) the owner's.
        if current_tenant() is None:
            return self._engine, self._read_engine
        return self._tenant_engine, self._tenant_read_engine

    @property
    def retry(self) -> RetryPolicy:
        """The one retry policy: whole transactions, transient failures only, bounded."""
        return self._retry

    def observe_retries(self, callback: Callable[[str], None]) -> None:
        """Has the retry policy tell ``callback`` the reason of every retry (for metrics)."""
        self._retry = dataclasses.replace(self._retry, on_retry=callback)

    def trace_statements(self, tracer_provider: Any) -> None:
        """Opens an OpenTelemetry span per SQL statement run inside a recorded span.

        Uses the SQLAlchemy instrumentation's per-engine tracer rather than its global
        instrumentor, which instruments once per process and so would miss a second database.
        A statement outside a recorded span (a call not sampled, background work) costs one
        check and no span; the pool's connection counts are left to /metrics.
        """
        from opentelemetry.instrumentation.sqlalchemy import __version__
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.trace import get_current_span, get_tracer

        class SampledStatementTracer(EngineTracer):
            def _before_cur_exec(self, conn, cursor, statement, params, context, executemany):
                if not get_current_span().is_recording():
                    return statement, params
                return super()._before_cur_exec(
                    conn, cursor, statement, params, context, executemany
                )

            def _pool_connect(self, *args: Any) -> None:
                pass

            _pool_close = _pool_checkin = _pool_checkout = _pool_connect

        tracer = get_tracer(
            "opentelemetry.instrumentation.sqlalchemy", __version__, tracer_provider
        )
        usage = (
            NoOpMeterProvider()
            .get_meter(__name__)
            .create_up_down_counter("db.client.connections.usage")
        )
        for engine in self.engines:
            SampledStatementTracer(tracer, engine, usage)

    def pool_status(self) -> tuple[int, int]:
        """Connections checked out now and the pools' size, over every engine."""
        in_use = size = 0
        for engine in self.engines:
            pool = engine.pool
            checked_out = getattr(pool, "checkedout", None)
            if checked_out is not None:
                in_use += checked_out()
            size += pool.size() if hasattr(pool, "size") else 0
        return in_use, size

    def unit_of_work(self) -> UnitOfWork:
        """Return a new unit of work; use it as a context manager and call ``commit()``."""
        engine, _ = self._scoped()
        return SqlUnitOfWork(engine, self._committed if self._commit_listeners else None)

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every COMMIT a unit of work of this object sends.

        Also after a COMMIT whose outcome is unknown. Runs on the committing thread before
        the unit of work's caller goes on, so it must be quick (a read cache drops its rows).
        """
        self._commit_listeners.append(listener)

    def _committed(self) -> None:
        for listener in self._commit_listeners:
            listener()

    def read_unit_of_work(self) -> ReadUnitOfWork:
        """Return a new read-only unit of work: autocommit, one round trip per statement."""
        _, engine = self._scoped()
        return ReadUnitOfWork(engine)

    def read(self, fn: Callable[[ReadUnitOfWork], T]) -> T:
        """Run the read-only ``fn`` on an autocommit connection, retrying transient failures.

        Each statement ``fn`` sends is its own implicit transaction: no BEGIN, no COMMIT, so a
        single-statement read costs exactly one round trip. A connection found dead is
        replaced and ``fn`` runs again (reads are safe to repeat). ``fn`` must not write.
        """

        def attempt() -> T:
            with self.read_unit_of_work() as uow:
                return fn(uow)

        with driver_errors():
            return self._retry.run(attempt)

    def run(self, fn: Callable[[UnitOfWork], T]) -> T:
        """Run ``fn`` in a fresh unit of work and commit, retrying the whole transaction.

        Each attempt gets a new unit of work, so a retried transaction never sees a
        half-applied earlier attempt. ``fn`` may therefore run more than once and must not
        have side effects outside the unit of work.

        A connection lost *while committing* is not retried: the commit may have landed, and
        running the transaction again could apply it twice. It raises :class:`Unavailable`
        at once; callers retry safely with their request id or etag.
        """

        def attempt() -> T:
            with self.unit_of_work() as uow:
                result = fn(uow)
                uow.commit()  # CommitOutcomeUnknown is not transient: never retried
                return result

        with driver_errors():
            return self._retry.run(attempt)

    def listener(
        self,
        handlers: Mapping[str, Callable[[str], None]],
        on_sync: Callable[[bool], None] = lambda _synced: None,
    ) -> NotificationListener | None:
        """A (not yet started) listener for the channels of ``handlers``; None on SQLite.

        See :mod:`storage.notifications` for the channels the schema's triggers notify.
        """
        if self.dialect != "postgresql":
            return None
        return NotificationListener(
            self._conninfo(), handlers, on_sync, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S
        )

    def ping(self) -> bool:
        """True when the database answers ``SELECT 1`` within ``probe_timeout``; else False.

        Never waits longer than that: a probe still stuck from last time (a frozen database)
        answers False at once. On PostgreSQL the probe has a connection of its own, so a pool
        drained by stuck calls cannot make the database look down, nor hide that it is.
        """
        if self._probe is not None and not self._probe.done.is_set():
            return False
        self._probe = _Probe(self._probe_once)
        if self._probe.done.wait(self._limits.probe_timeout):
            return self._probe.answer
        logger.warning("database ping got no answer in %.1fs", self._limits.probe_timeout)
        return False

    def _probe_once(self) -> bool:
        try:
            if self.dialect != "postgresql":
                # The read engine: on SQLite its deferred transaction does not queue behind
                # a writer for the write lock, which a health probe has no use for.
                with self._read_engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return True
            with self._probe_lock:
                if self._probe_connection is None or self._probe_connection.closed:
                    self._probe_connection = psycopg.connect(
                        self._conninfo(), autocommit=True, **self._probe_connect_args()
                    )
                self._probe_connection.execute("SELECT 1")
            return True
        except (SQLAlchemyError, psycopg.Error):
            logger.info("database ping failed", exc_info=True)
            self._close_probe_connection()
            return False

    def _probe_connect_args(self) -> dict[str, Any]:
        args = self._limits.connect_args()
        probe_ms = _ms(self._limits.probe_timeout)
        args["options"] = f"-c statement_timeout={probe_ms}"
        args["tcp_user_timeout"] = max(probe_ms, 1000)
        # libpq's smallest connect timeout is 2 s; the probe gives up waiting sooner anyway.
        args["connect_timeout"] = 2
        return args

    def _close_probe_connection(self) -> None:
        connection, self._probe_connection = self._probe_connection, None
        if connection is not None:
            try:
                connection.close()
            except psycopg.Error:
                pass

    def _conninfo(self) -> str:
        return self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def migrate(self) -> None:
        """Upgrade the schema to the newest migration; a no-op when it is already there."""
        postgres = self.dialect == "postgresql"
        with driver_errors(), self._engine.connect() as connection:
            if postgres:
                _advisory(connection, "pg_advisory_lock")
            try:
                config = _alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            except BaseException:
                # An aborted transaction would make the unlock below fail and hide this error.
                connection.rollback()
                raise
            finally:
                if postgres:
                    _advisory(connection, "pg_advisory_unlock")

    def schema_is_current(self) -> bool:
        """True when the schema is at the newest migration this code ships."""
        return self.current_revision() == head_revision()

    def current_revision(self) -> str | None:
        """Return the schema's migration revision, or None for an empty database."""
        with driver_errors(), self._engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def dispose(self) -> None:
        """Close every pooled connection (at shutdown, or in tests between databases)."""
        for engine in self.engines:
            engine.dispose()
        # A probe stuck on a frozen database holds the lock; its connection then closes
        # when tcp_user_timeout ends the wait, and dispose must not wait for that.
        if self._probe_lock.acquire(blocking=False):
            try:
                self._close_probe_connection()
            finally:
                self._probe_lock.release()


class _Probe:
    """One run of ``probe`` on a daemon thread, its answer set once ``done`` is.

    Daemon: a probe stuck on a frozen database (whose kernel still acknowledges packets, so
    no TCP timeout fires) must not keep the process from exiting.
    """

    def __init__(self, probe: Callable[[], bool]) -> None:
        self.answer = False
        self.done = threading.Event()
        self._probe = probe
        threading.Thread(target=self._run, name="database-probe", daemon=True).start()

    def _run(self) -> None:
        try:
            self.answer = self._probe()
        finally:
            self.done.set()


def _confined(engine: Engine) -> Engine:
    """``engine`` with every connection acting as the service role, for the bound tenant.

    ``SET ROLE`` once per connection: tests and development connect as a superuser, and the
    owner of the tables bypasses row-level security too; the service role bypasses nothing.
    The tenant goes in a session setting, checked at every checkout and set only when it
    differs from the one the connection holds, so a connection that serves the same tenant
    again costs no extra round trip, and none ever serves a tenant with another's setting.
    """

    @event.listens_for(engine, "connect")
    def _as_service_role(dbapi_connection: Any, record: Any) -> None:
        record.info.pop(_TENANT_INFO_KEY, None)
        _in_autocommit(dbapi_connection, f"SET ROLE {SERVICE_ROLE}", ())

    @event.listens_for(engine, "checkout")
    def _for_the_bound_tenant(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # No tenant bound cannot happen on these pools; were it to, the empty setting
        # matches no row.
        tenant = current_tenant() or ""
        if record.info.get(_TENANT_INFO_KEY) == tenant:
            return
        # Forgotten first: a failure below leaves the connection with no tenant remembered,
        # so its next checkout sets the tenant again.
        record.info.pop(_TENANT_INFO_KEY, None)
        try:
            _in_autocommit(
                dbapi_connection, "SELECT set_config(%s, %s, false)", (TENANT_SETTING, tenant)
            )
        except psycopg.Error as exc:
            if dbapi_connection.broken or dbapi_connection.closed:
                # A restarted server: the pool's other idle connections are as dead as this
                # one. SQLAlchemy replaces them all and checks out a fresh connection.
                raise InvalidatePoolError("a pooled connection was lost") from exc
            raise
        record.info[_TENANT_INFO_KEY] = tenant

    return engine


def _in_autocommit(dbapi_connection: Any, statement: str, parameters: tuple[Any, ...]) -> None:
    # Outside any transaction, so the setting outlives it: a setting made inside one would be
    # undone by its rollback while the connection still believed it held.
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute(statement, parameters)
    finally:
        dbapi_connection.autocommit = autocommit


def _advisory(connection: Connection, function: str) -> None:
    # A session-level lock, so it spans the migration transactions until unlocked.
    connection.execute(text(f"SELECT {function}(:key)"), {"key": _MIGRATION_LOCK_KEY})
    connection.commit()


def head_revision() -> str:
    """The newest migration this code ships."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("storage/migrations/versions holds no migration")
    return head


def _alembic_config() -> Config:
    # No alembic.ini at runtime: the migrations ship inside the package.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _json_dumps(value: Any) -> bytes | str:
    try:
        return orjson.dumps(value)
    except TypeError:
        # What orjson refuses (an integer past 64 bits, say), the json module writes.
        return json.dumps(value)


def _sqlite_engine(url: str, *, echo: bool, writes: bool) -> Engine:
    engine = create_engine(
        url,
        echo=echo,
        # Reads run in autocommit: each statement is its own deferred transaction, which WAL
        # lets run beside the one writer instead of queueing behind it.
        **({} if writes else {"isolation_level": "AUTOCOMMIT"}),
        # The pool hands connections to worker threads; each is used by one thread at a time.
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so the "begin" hook below decides how
        # transactions start (SQLAlchemy's documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # WAL lets readers proceed while one writer writes; busy_timeout makes a second
            # writer wait for the lock instead of failing at once.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    if not writes:
        return engine

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes
        # fails with "database is locked" when another writer got there first, while
        # IMMEDIATE makes it wait (busy_timeout) and so serialises concurrent writers.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
