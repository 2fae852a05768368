"""Typed settings read from ``SIMCONFIG_*`` environment variables (pydantic-settings).

Everything is validated once, at start-up, with a message that names the bad variable, so a
misconfigured deployment fails fast instead of at the first call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "SIMCONFIG_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


_Text = Annotated[str, BeforeValidator(_stripped)]


class Settings(BaseSettings):
    """Every setting of the server, with its default.

    Each field is read from ``SIMCONFIG_<FIELD>``; build it with :meth:`from_env`, which turns
    validation errors into a :class:`SettingsError` naming the variable.
    """

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    database_url: str | None = None
    host: _Text = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    data_dir: Path = Path("data")
    # Per process. Python runs one thread at a time: a few threads keep the process busy while
    # others wait on the database; more only queue for the interpreter lock. Measured on two
    # cores, 4 threads per process served GetScenario ~75% faster than 16.
    worker_threads: int = Field(4, ge=1, le=1024)
    grace_period: float = Field(10.0, ge=0, le=3600)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    db_pool_size: int = Field(10, ge=1, le=200)
    # How long a lost or refused database connection is retried, bounded by each call's
    # deadline: a PostgreSQL restart shorter than this is invisible to clients.
    db_retry_seconds: float = Field(5.0, ge=0, le=300)
    # Bounded waits on PostgreSQL (seconds): no statement, open transaction, pool checkout or
    # silent peer can hold a call, or the health probe, forever.
    db_statement_timeout: float = Field(30.0, gt=0, le=3600)
    db_idle_in_transaction_timeout: float = Field(60.0, gt=0, le=3600)
    db_tcp_user_timeout: float = Field(10.0, ge=1, le=3600)
    db_pool_timeout: float = Field(5.0, gt=0, le=3600)
    health_probe_timeout: float = Field(1.0, gt=0, le=60)
    migrate_on_start: bool = True
    demo_tenant: bool = True
    scenario_retention_days: int = Field(30, ge=1, le=3650)
    # With health_probe_timeout, how soon a frozen database shows as NOT_SERVING: at most
    # their sum after it stopped answering.
    health_check_interval: float = Field(1.0, ge=0.1, le=300)
    architect_engine: Annotated[Literal["builtin", "remote"], BeforeValidator(_lower)] = "builtin"
    architect_address: _Text = ""
    architect_timeout: float = Field(30.0, ge=0.1, le=3600)
    architect_workers: int = Field(2, ge=0, le=64)
    architect_lease_seconds: float = Field(30.0, ge=1, le=3600)
    architect_max_attempts: int = Field(3, ge=1, le=100)
    architect_poll_seconds: float = Field(1.0, ge=0.05, le=60)
    # 0: one process per CPU on PostgreSQL, one on the embedded SQLite database.
    processes: int = Field(0, ge=0, le=64)
    api_key_cache_size: int = Field(10_000, ge=100, le=10_000_000)

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> str | None:
        if value is None:
            return None
        value = str(value).strip()
        if not value:
            return None
        if not (value.startswith("postgresql+psycopg://") or value.startswith("sqlite:///")):
            raise ValueError("must start with postgresql+psycopg:// or sqlite:///")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("must not be empty")
            return value.strip()
        return value

    @model_validator(mode="after")
    def _verify(self) -> Settings:
        """Rules that span several settings."""
        if self.architect_engine == "remote" and not self.architect_address:
            raise ValueError(
                "SIMCONFIG_ARCHITECT_ADDRESS must be set when SIMCONFIG_ARCHITECT_ENGINE=remote"
            )
        if not self.host:
            raise ValueError("SIMCONFIG_HOST must not be empty")
        return self

    @property
    def uses_embedded_database(self) -> bool:
        """True when no database URL is configured and the SQLite default is used."""
        return self.database_url is None

    @property
    def process_count(self) -> int:
        """How many server processes ``serve`` runs on the one port."""
        if self.processes:
            return self.processes
        return 1 if self.uses_embedded_database else max(1, os.cpu_count() or 1)

    @property
    def address(self) -> str:
        """The ``host:port`` the server binds to."""
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Reads and validates the settings; raises :class:`SettingsError` naming the variable.

        ``environ`` (default: the process environment) is read alone: nothing else leaks in.
        """
        try:
            if environ is None:
                return cls()
            values = {
                name: environ[PREFIX + name.upper()]
                for name in cls.model_fields
                if PREFIX + name.upper() in environ
            }
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated."""
        return type(self).model_validate(self.model_dump() | changes)


def _describe(exc: ValidationError) -> str:
    """One line per problem, each naming the variable and the value it had."""
    lines = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if not location:  # a rule across settings: the message names its variables
            lines.append(message)
            continue
        variable = PREFIX + location[0].upper()
        given = error.get("input")
        if location[0] == "database_url" and isinstance(given, str):
            given = given.split(":", 1)[0] + ":..."  # a URL may carry a password
        lines.append(f"{variable}: {message[:1].lower()}{message[1:]} (got {given!r})")
    return "; ".join(lines)


def configure_logging(level: str) -> None:
    """Sets up plain, one-line-per-record logging on stderr."""
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if level != "DEBUG":
        # Alembic narrates every connection at INFO ("Context impl ..."), which would clutter
        # every CLI command; its warnings and errors still show.
        logging.getLogger("alembic").setLevel(logging.WARNING)
