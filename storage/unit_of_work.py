"""The unit of work: one transaction and the repositories that share it."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from storage.deadlines import time_left
from storage.driver_errors import driver_errors, translate
from storage.errors import CommitOutcomeUnknown, DeadlineExceeded
from storage.repositories import (
    ApiKeyRepository,
    ArchitectJobRepository,
    BatchRequestRepository,
    ConfigRevisionRepository,
    PeriodicRunRepository,
    ScenarioRepository,
    ServiceSecretRepository,
    SimulationEventRepository,
    SimulationRepository,
    TemplateRepository,
    TenantRepository,
    WebhookDeliveryRepository,
    WebhookRepository,
)
from storage.retry import is_lost_connection

logger = logging.getLogger(__name__)


class Repositories:
    """The repositories a unit of work offers, all on the same connection."""

    tenants: TenantRepository
    api_keys: ApiKeyRepository
    scenarios: ScenarioRepository
    simulations: SimulationRepository
    revisions: ConfigRevisionRepository
    events: SimulationEventRepository
    jobs: ArchitectJobRepository
    periodic_runs: PeriodicRunRepository
    batch_requests: BatchRequestRepository
    templates: TemplateRepository
    secrets: ServiceSecretRepository
    webhooks: WebhookRepository
    webhook_deliveries: WebhookDeliveryRepository


class UnitOfWork(Repositories, abc.ABC):
    """An atomic group of repository calls; rolled back on exit unless committed.

    Services depend on this abstract class, so their tests can pass a fake subclass.
    """

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    @abc.abstractmethod
    def commit(self) -> None:
        """Make every change since the last commit durable."""

    @abc.abstractmethod
    def rollback(self) -> None:
        """Discard every change since the last commit (a no-op when there is none)."""


class ReadUnitOfWork(Repositories):
    """Repositories over one autocommit connection: for reads, with no transaction around them.

    Every statement is its own implicit transaction, so nothing is sent but the statements
    themselves (no BEGIN, no COMMIT). There is nothing to commit or roll back; repositories'
    write methods must not be called through it.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def __enter__(self) -> Self:
        with driver_errors():
            self._connection = self._engine.connect()
        _attach_repositories(self, self._connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _attach_repositories(uow: Repositories, connection: Connection) -> None:
    uow.tenants = TenantRepository(connection)
    uow.api_keys = ApiKeyRepository(connection)
    uow.scenarios = ScenarioRepository(connection)
    uow.simulations = SimulationRepository(connection)
    uow.revisions = ConfigRevisionRepository(connection)
    uow.events = SimulationEventRepository(connection)
    uow.jobs = ArchitectJobRepository(connection)
    uow.periodic_runs = PeriodicRunRepository(connection)
    uow.batch_requests = BatchRequestRepository(connection)
    uow.templates = TemplateRepository(connection)
    uow.secrets = ServiceSecretRepository(connection)
    uow.webhooks = WebhookRepository(connection)
    uow.webhook_deliveries = WebhookDeliveryRepository(connection)


class SqlUnitOfWork(UnitOfWork):
    """A unit of work over one SQLAlchemy connection taken from the engine's pool.

    The connection is opened on enter and returned to the pool on exit. After ``commit()``
    the next statement starts a new transaction on the same connection.
    """

    def __init__(self, engine: Engine, after_commit: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        # Told after every COMMIT this unit of work sends, landed or not (read caches).
        self._after_commit = after_commit

    def __enter__(self) -> Self:
        with driver_errors():
            self._connection = self._engine.connect()
        _attach_repositories(self, self._connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if connection.in_transaction():
                connection.rollback()
        except SQLAlchemyError:
            # The connection is probably gone; the database discards the transaction anyway,
            # and raising here would hide the exception that is already propagating.
            logger.warning("rollback on unit-of-work exit failed", exc_info=True)
        finally:
            connection.close()

    def commit(self) -> None:
        """Commit the current transaction; Unavailable/StorageError if the database fails.

        A connection lost during the COMMIT raises :class:`CommitOutcomeUnknown`: the server
        may have committed before the connection broke, so the transaction must not be run
        again blindly.
        """
        left = time_left()
        if left is not None and left <= 0:
            self.rollback()
            raise DeadlineExceeded("the call's deadline passed before the commit; rolled back")
        try:
            self._active().commit()
        except (SQLAlchemyError, psycopg.Error) as exc:
            if self._after_commit is not None:
                self._after_commit()  # a COMMIT whose outcome is unknown may have landed
            if is_lost_connection(exc) and not _ended_before_commit(exc):
                raise CommitOutcomeUnknown(
                    "the database connection failed while committing; the outcome is unknown"
                ) from exc
            raise translate(exc) from exc
        if self._after_commit is not None:
            self._after_commit()

    def rollback(self) -> None:
        """Roll back the current transaction, if any."""
        connection = self._active()
        if connection.in_transaction():
            with driver_errors():
                connection.rollback()

    def _active(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("the unit of work is not open; use it in a `with` block")
        return self._connection


# 57P01 admin_shutdown: the server ended the session (a fast shutdown or restart,
# pg_terminate_backend) while it waited for the client. Had it committed first, the client
# would have read the COMMIT's success before this error, so the transaction surely rolled
# back and running it again is safe.
_SESSION_ENDED_BEFORE_COMMIT = "57P01"


def _ended_before_commit(exc: BaseException) -> bool:
    cause = exc.orig if isinstance(exc, SQLAlchemyError) and hasattr(exc, "orig") else exc
    return isinstance(cause, psycopg.Error) and cause.sqlstate == _SESSION_ENDED_BEFORE_COMMIT
