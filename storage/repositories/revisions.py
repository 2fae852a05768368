"""Config revisions: append-only, numbered per simulation."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import insert, select

from storage.errors import NotFound
from storage.records import ConfigRevision
from storage.repositories.base import SqlRepository
from storage.schema import config_revisions
from storage.translate import UniqueRule

_table = config_revisions


class ConfigRevisionRepository(SqlRepository):
    """Stores and reads config revisions of a tenant's simulations."""

    def add(self, rev: ConfigRevision) -> ConfigRevision:
        """Store a revision.

        AlreadyExists(field="revision") when the number is taken: the primary key is a second
        guard against two writers both computing "current + 1". NotFound when the simulation
        does not exist.
        """
        self._execute_guarded(
            insert(_table).values(**asdict(rev)),
            entity="config_revision",
            uniques=(
                UniqueRule(
                    "pk_config_revisions",
                    ("simulation_id", "revision"),
                    "revision",
                    str(rev.revision),
                ),
            ),
            parent=("simulation", rev.simulation_id),
        )
        return self.get(rev.tenant_id, rev.simulation_id, rev.revision)

    def get(self, tenant_id: str, simulation_id: str, revision: int) -> ConfigRevision:
        """Return one revision; NotFound otherwise."""
        row = self._execute(
            select(_table).where(
                _table.c.tenant_id == tenant_id,
                _table.c.simulation_id == simulation_id,
                _table.c.revision == revision,
            )
        ).first()
        if row is None:
            raise NotFound("config_revision", f"{simulation_id}@{revision}")
        return ConfigRevision(**row._mapping)

    def list(
        self, tenant_id: str, simulation_id: str, *, before_revision: int | None, limit: int
    ) -> list[ConfigRevision]:
        """Return up to ``limit`` revisions newest first, below ``before_revision`` if given."""
        statement = select(_table).where(
            _table.c.tenant_id == tenant_id, _table.c.simulation_id == simulation_id
        )
        if before_revision is not None:
            statement = statement.where(_table.c.revision < before_revision)
        rows = self._execute(statement.order_by(_table.c.revision.desc()).limit(limit))
        return [ConfigRevision(**row._mapping) for row in rows]
