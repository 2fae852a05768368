"""Service secrets: values every server must share, made by the first one that needs them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from storage.driver_errors import UniqueRule
from storage.repositories.base import SqlRepository
from storage.schema import service_secrets


class ServiceSecretRepository(SqlRepository):
    """Stores named secrets (not tenant data), such as the key that signs page tokens."""

    def get(self, name: str) -> str | None:
        """The stored value of ``name``, or None."""
        return self._execute(
            select(service_secrets.c.value).where(service_secrets.c.name == name)
        ).scalar()

    def add(self, name: str, value: str, now: datetime) -> None:
        """Stores ``value`` as ``name``; AlreadyExists when another server stored one first."""
        self._execute_guarded(
            insert(service_secrets).values(name=name, value=value, create_time=now),
            entity="service_secret",
            uniques=(UniqueRule("service_secrets_pkey", ("name",), "name", name),),
        )
